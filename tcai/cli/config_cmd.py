"""`tcai config`: show the effective configuration, secrets masked."""

from __future__ import annotations

import typer

from tcai.cli import output
from tcai.cli.context import state
from tcai.cli.options import JsonOpt

app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)


@app.command("show")
def show(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Print every variable and its effective value; secrets are masked."""
    view = state(ctx).settings.public_view()
    if json_:
        output.emit_json(view)
        return
    output.table(["variable", "value"], [(k, "" if v is None else v) for k, v in view.items()])
