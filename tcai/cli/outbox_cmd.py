"""`tcai outbox run | list | show | retry`: webhook and e-mail deliveries."""

from __future__ import annotations

from typing import Annotated

import typer

from tcai.cli import output
from tcai.cli.context import state
from tcai.cli.options import JsonOpt
from tcai.errors import UsageError

app = typer.Typer(
    help="Outbox: webhook and owner e-mail deliveries, their log and dead letters.",
    no_args_is_help=True,
)


def _short(iso: str | None) -> str | None:
    return iso[:19].replace("T", " ") if iso else None


@app.command("run")
def run(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="One pass, then exit (for cron); else run until ^C.")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Deliver what is due (the daemon does this by itself every 5 s)."""
    import asyncio

    from tcai.delivery.outbox import OutboxWorker, deliver_due

    cli = state(ctx)
    engine, settings = cli.migrated_engine(), cli.settings
    if not once:
        output.info("delivering every 5 s; press Ctrl-C to stop")
        asyncio.run(OutboxWorker(engine, settings).run())
        return
    result = asyncio.run(deliver_due(engine, settings))
    if json_:
        output.emit_json(result.as_dict())
        return
    for item in result.items:
        line = f"{item.outbox_id} {item.channel} {item.outcome}"
        output.info(line + (f": {item.error}" if item.error else ""))
    output.result(
        f"✓ {result.claimed} due: {result.delivered} delivered, {result.retried} to retry, "
        f"{result.dead} dead"
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="pending, delivered or dead.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
    json_: JsonOpt = False,
) -> None:
    """List outbox items, newest first."""
    from tcai.db.engine import session_scope
    from tcai.db.models import OUTBOX_STATUSES
    from tcai.delivery.outbox import list_outbox

    if status is not None and status.strip().lower() not in OUTBOX_STATUSES:
        raise UsageError(f"--status must be one of {', '.join(OUTBOX_STATUSES)}")
    with session_scope(state(ctx).migrated_engine()) as session:
        items = list_outbox(session, status.strip().lower() if status else None, limit)
    output.listing(
        items,
        [
            ("id", "id"),
            ("event", "event_type"),
            ("channel", "channel"),
            ("target", "target"),
            ("status", "status"),
            ("attempts", "attempts"),
            ("when (UTC)", lambda i: _short(i["delivered_at"] or i["next_attempt_at"])),
            ("error", "last_error"),
        ],
        json_=json_,
        empty="the outbox is empty" + (f" (status {status})" if status else ""),
    )


@app.command("show")
def show(
    ctx: typer.Context,
    outbox_id: Annotated[int, typer.Argument(metavar="ID")],
    json_: JsonOpt = False,
) -> None:
    """One item and its delivery log."""
    from tcai.db.engine import session_scope
    from tcai.delivery.outbox import get_outbox_item

    with session_scope(state(ctx).migrated_engine()) as session:
        item = get_outbox_item(session, outbox_id)
    if json_:
        output.emit_json(item)
        return
    log = item.pop("log")
    for key, value in item.items():
        output.result(f"{key}: {'' if value is None else value}")
    output.table(
        ["attempted_at", "status_code", "duration_ms", "error"],
        [(a["attempted_at"], a["status_code"], a["duration_ms"], a["error"]) for a in log],
        title="delivery log",
    )


@app.command("retry")
def retry(
    ctx: typer.Context,
    outbox_id: Annotated[int, typer.Argument(metavar="ID")],
    reason: Annotated[str | None, typer.Option("--reason")] = None,
    json_: JsonOpt = False,
) -> None:
    """Make a dead (or waiting) item due now; audited. Attempts so far are kept."""
    from tcai.delivery.outbox import retry_item

    cli = state(ctx)
    item = retry_item(cli.migrated_engine(), outbox_id, reason=reason, actor=cli.actor)
    if json_:
        output.emit_json(item)
        return
    output.result(f"✓ outbox item {outbox_id} is pending again (after {item['attempts']} attempts)")
    output.info("the daemon delivers it within seconds; or run `tcai outbox run --once`")
