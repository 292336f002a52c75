"""`tcai secrets rotate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tcai.cli import output
from tcai.cli.context import state
from tcai.cli.options import DryRunOpt, JsonOpt

app = typer.Typer(help="Secrets: rotation.", no_args_is_help=True)

RESTART_ADVICE = (
    "restart the daemon so it uses the new secrets: `tcai serve`, "
    "or `tcai demo` if it was serving the demo pages (`tcai serve` does not serve /demo/)"
)
"""The next step after a rotation. Both commands, since either may be the one running:
only `tcai demo` serves /demo/ (docs/cli.md, "Advice that keeps its promise")."""


@app.command("rotate")
def rotate_command(
    ctx: typer.Context,
    env_file: Annotated[
        Path | None, typer.Option("--env-file", help="Default: the root --env-file (.env).")
    ] = None,
    dry_run: DryRunOpt = False,
    json_: JsonOpt = False,
) -> None:
    """New SESSION_SECRET and WIDGET_SECRET; live widgets keep working; sessions end."""
    from tcai.access.rotation import plan_rotation, rotate

    cli = state(ctx)
    path = env_file or cli.env_file
    if dry_run:
        plan = plan_rotation(path)
        ended = 0
    else:
        engine = cli.migrated_engine()
        plan, ended = rotate(engine, path, actor=cli.actor)
    document = {
        "env_file": str(path),
        "changed": list(plan.changed),
        "sessions_ended": ended,
        "dry_run": dry_run,
        "next_step": "run again without --dry-run to rotate" if dry_run else RESTART_ADVICE,
    }
    if json_:
        output.emit_json(document)
        return
    verb = "would rotate" if dry_run else "rotated"
    output.result(
        f"✓ {verb} {', '.join(plan.changed)} in {path}"
        + ("" if dry_run else f" (mode 0600); {ended} operator session(s) ended")
    )
    if not plan.had_widget_secret:
        output.warn("there was no WIDGET_SECRET before: widgets already on pages must reload")
    elif plan.previous_rotation:
        since = plan.previous_rotation
        output.warn(f"widget tokens signed before the previous rotation ({since}) stop working now")
    if not dry_run:
        output.info(f"next: {RESTART_ADVICE}")
