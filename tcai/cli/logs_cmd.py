"""`tcai logs`: what the daemon and the commands logged for operators."""

from __future__ import annotations

from typing import Annotated

import typer

from tcai.cli import complete, output
from tcai.cli.context import state
from tcai.cli.options import JsonOpt, SinceOpt

app = typer.Typer(help="Logs: read the system log.", no_args_is_help=True)


@app.command("system")
def system_command(
    ctx: typer.Context,
    level: Annotated[
        str | None,
        typer.Option(
            "--level", help="debug, info, warning, error or critical; this and more severe."
        ),
    ] = None,
    since: SinceOpt = None,
    workspace: Annotated[
        str | None,
        typer.Option(
            "--workspace", "-w", help="Only this client's rows.", autocompletion=complete.client_ids
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
    json_: JsonOpt = False,
) -> None:
    """The system_log table, newest first (errors the daemon and commands recorded)."""
    from tcai.records.leads import parse_since
    from tcai.records.system_log import list_system_log

    rows = list_system_log(
        state(ctx).migrated_engine(),
        level=level,
        since=parse_since(since),
        workspace=workspace,
        limit=limit,
    )
    output.listing(
        rows,
        [
            ("at", lambda r: r["at"][:19]),
            ("level", "level"),
            ("source", "source"),
            ("message", "message"),
        ],
        json_=json_,
        empty="no system log entries",
    )
