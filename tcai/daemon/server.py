"""Running the daemon: one or more worker processes on one port, drained on SIGTERM.

With `--workers N` the parent starts N-1 children (spawned, not forked, so no engine or
event loop is shared) and every process binds the same port with SO_REUSEPORT; the
kernel spreads connections across them. SIGTERM or SIGINT stops accepting, waits for
in-flight requests to finish (up to `DRAIN_SECONDS`) and exits; the parent forwards the
signal to its children and waits for them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from collections.abc import Callable

from aiohttp import web

from tcai.config import Settings
from tcai.daemon.app import create_app

DRAIN_SECONDS = 30.0


async def _serve(
    settings: Settings,
    host: str,
    port: int,
    *,
    demo: bool,
    worker: int,
    reuse_port: bool,
    on_ready: Callable[[str], None] | None,
) -> None:
    app = create_app(settings, demo=demo, worker=worker)
    runner = web.AppRunner(
        app, handle_signals=False, shutdown_timeout=DRAIN_SECONDS, access_log=None
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if on_ready is not None:
        on_ready(site.name)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()  # stops listening, lets in-flight requests finish


def _child(settings: Settings, host: str, port: int, demo: bool, worker: int) -> None:
    asyncio.run(
        _serve(settings, host, port, demo=demo, worker=worker, reuse_port=True, on_ready=None)
    )


def run_server(
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int = 1,
    demo: bool = False,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    children: list[multiprocessing.process.BaseProcess] = []
    if workers > 1:
        context = multiprocessing.get_context("spawn")
        for index in range(1, workers):
            child = context.Process(
                target=_child, args=(settings, host, port, demo, index), daemon=False
            )
            child.start()
            children.append(child)
    try:
        asyncio.run(
            _serve(
                settings, host, port, demo=demo, worker=0, reuse_port=workers > 1, on_ready=on_ready
            )
        )
    finally:
        for running in children:
            if running.is_alive():
                running.terminate()  # SIGTERM: each child drains like the parent
        for running in children:
            running.join(DRAIN_SECONDS + 5)
