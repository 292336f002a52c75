"""`create_app(settings)`: the daemon's routes, middlewares and resources.

Exactly the routes of docs/http-api.md (plus demo pages when started in demo mode, and
the owner portal's pages, rendered with Jinja templates). Each resource
has one cleanup context: the database engine, the LLM client, the PostgreSQL change
listener, the outbox delivery worker. Nothing here is global; everything hangs off the
application by typed key.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from sqlalchemy.engine import Engine

from tcai.chat.directory import BotDirectory
from tcai.chat.llm import make_llm_client
from tcai.chat.pipeline import ChatEngine, compile_bot
from tcai.config import Settings
from tcai.daemon.keys import (
    CHAT,
    CLIENTS,
    DEMO,
    DIRECTORY,
    ENGINE,
    LIMITS,
    METRICS,
    ORIGIN_REFUSALS,
    PROBE,
    SETTINGS,
)
from tcai.daemon.listener import listen_for_changes
from tcai.daemon.metrics import Metrics
from tcai.daemon.middlewares import make_middlewares
from tcai.daemon.portal.web import setup_templates
from tcai.daemon.probe import DatabaseProbe
from tcai.daemon.ratelimit import RateLimits
from tcai.daemon.remote import ClientAddresses
from tcai.daemon.routes import add_routes
from tcai.db.engine import make_engine
from tcai.delivery.outbox import OutboxWorker
from tcai.logs import AccessLog, remove_handlers, setup_logging
from tcai.quality.canary import canary_loop
from tcai.records.retention import purge_daily

MAX_BODY_BYTES = 16 * 1024


def create_app(
    settings: Settings,
    *,
    demo: bool = False,
    engine: Engine | None = None,
    worker: int = 0,
    rate_limits: RateLimits | None = None,
) -> web.Application:
    log_name = "access.jsonl" if worker == 0 else f"access.w{worker}.jsonl"
    access_log = AccessLog(Path(settings.log_dir) / log_name, f"tcai.access.{worker}")
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=make_middlewares(access_log))
    app[SETTINGS] = settings
    app[DEMO] = demo
    app[METRICS] = Metrics()
    app[LIMITS] = limits = rate_limits or RateLimits.from_settings(settings)
    app[CLIENTS] = ClientAddresses(settings.trusted_proxies)
    app[ORIGIN_REFUSALS] = {}
    db = engine or make_engine(settings.database_url or "")
    app[ENGINE] = db
    log_handlers = setup_logging(
        Path(settings.log_dir),
        settings.log_level,
        db,
        "tcai.jsonl" if worker == 0 else f"tcai.w{worker}.jsonl",
    )
    app[DIRECTORY] = BotDirectory(db, compile_config=compile_bot)
    app[PROBE] = DatabaseProbe(db)
    outbox = OutboxWorker(db, settings)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        llm = make_llm_client(settings)  # None in facts mode: openai is not even imported
        app[CHAT] = ChatEngine(settings, db, llm, directory=app[DIRECTORY], on_outbox=outbox.wake)
        listener = None
        if db.dialect.name == "postgresql":
            listener = asyncio.create_task(listen_for_changes(db, app[DIRECTORY]))
        yield
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        if llm is not None:
            await llm.close()
        if rate_limits is None:
            await limits.close()
        await asyncio.get_running_loop().run_in_executor(None, app[CHAT].close)
        remove_handlers(log_handlers)
        access_log.close()
        if engine is None:
            db.dispose()

    app.cleanup_ctx.append(resources)

    async def outbox_delivery(app: web.Application) -> AsyncIterator[None]:
        # Its own task: a slow or failing webhook never holds up a chat request.
        outbox.start()
        yield
        await outbox.stop()

    app.cleanup_ctx.append(outbox_delivery)

    async def retention_purge(app: web.Application) -> AsyncIterator[None]:
        # Daily, in a thread; one process per host is enough (worker 0), and a purge
        # that meets another host's purge only finds fewer rows to delete.
        task = asyncio.create_task(purge_daily(db, demo_safe_mode=settings.demo_safe_mode))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    if worker == 0:
        app.cleanup_ctx.append(retention_purge)

    async def canaries(app: web.Application) -> AsyncIterator[None]:
        # docs/canaries.md: on the schedule and after every config change, one process
        # per host (worker 0); recording a run locks the bot's row, so hosts agree.
        task = asyncio.create_task(
            canary_loop(
                app[CHAT],
                interval_s=settings.canary_interval_minutes * 60,
                on_run=lambda run: app[METRICS].canaries.labels(run.status).inc(),
            )
        )
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    if worker == 0 and settings.canary_interval_minutes > 0:
        app.cleanup_ctx.append(canaries)

    setup_templates(app)
    add_routes(app)
    return app
