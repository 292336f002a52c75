"""`tcai llm check`. Imports nothing heavy until the command runs (the settings, the
database helpers and the LLM client load inside it)."""

from __future__ import annotations

import typer

from tcai.cli import output
from tcai.cli.options import JsonOpt

app = typer.Typer(help="The LLM endpoint the assistants use.", no_args_is_help=True)


@app.command("check")
def check(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """One real call to the configured LLM: its latency, or the exact failure; exit 1 on
    failure. Without OPENAI_API_KEY, says facts mode is in use (exit 0)."""
    from tcai.cli.context import state
    from tcai.quality.llm_probe import probe_llm

    probe = probe_llm(state(ctx).settings)
    if json_:
        output.emit_json(probe.as_dict())
    elif not probe.configured:
        output.result(probe.message)
    elif probe.ok:
        output.result(f"✓ LLM OK: {probe.message}")
    else:
        output.fail(f"LLM check failed ({probe.kind}): {probe.message}")
    if not probe.ok:
        raise typer.Exit(1)
