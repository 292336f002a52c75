"""`tcai knowledge import`: facts and FAQs from the business's own site or a file
(docs/knowledge-import.md). The crawl, the parsers and the diff live in `tcai.knowledge`
and load only when the command runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tcai.cli import complete, output
from tcai.cli.context import state
from tcai.cli.options import JsonOpt
from tcai.errors import UsageError

if TYPE_CHECKING:
    from tcai.knowledge.service import ImportResult

app = typer.Typer(
    help="Knowledge: import facts and FAQs from a business's website or a file.",
    no_args_is_help=True,
)


@app.command("import")
def import_(
    ctx: typer.Context,
    bot_id: Annotated[
        str, typer.Argument(help="The bot to import into.", autocompletion=complete.bot_ids)
    ],
    url: Annotated[
        str | None, typer.Option("--url", help="The business's own site, https://…")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="faq.csv (question,answer) or faq.md.")
    ] = None,
    max_pages: Annotated[int, typer.Option("--max-pages", help="Requests at most.")] = 20,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the diff; write nothing (the default).")
    ] = False,
    apply: Annotated[bool, typer.Option("--apply", help="Write the diff's applied items.")] = False,
    overwrite: Annotated[
        list[str] | None,
        typer.Option("--overwrite", help="Replace a conflicting current value (repeatable)."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Propose the site's or file's facts and FAQs as a diff; --apply writes them."""
    if (url is None) == (file is None):
        raise UsageError("give exactly one of --url https://… or --file faq.csv|faq.md")
    if dry_run and apply:
        raise UsageError("--dry-run and --apply contradict each other; give one")
    cli = state(ctx)
    if url is not None:
        import asyncio

        from tcai.knowledge.service import import_site

        result = asyncio.run(
            import_site(
                cli.migrated_engine(),
                cli.settings,
                bot_id,
                url,
                max_pages=max_pages,
                apply=apply,
                overwrite=overwrite or [],
                actor=cli.actor,
            )
        )
    else:
        from tcai.knowledge.service import import_file

        assert file is not None
        result = import_file(
            cli.migrated_engine(),
            bot_id,
            file,
            apply=apply,
            overwrite=overwrite or [],
            actor=cli.actor,
        )
    if json_:
        output.emit_json(result.as_dict())
    else:
        _render(result)


def _shown(value: Any) -> str:
    if isinstance(value, dict) and "question" in value:
        answer = str(value.get("answer", ""))
        short = answer if len(answer) <= 70 else answer[:69] + "…"
        return f"{value['question']} → {short}" if answer else str(value["question"])
    if isinstance(value, dict) and "name" in value:
        return f"{value['name']}: {value.get('description', '')}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _render(result: ImportResult) -> None:
    for note in result.notes:
        output.warn(f"{note.url}: {note.message}")
    for problem in result.problems:
        output.warn(problem)
    changes = result.proposal.changes
    rows = [
        ["+" if c.apply else " ", c.kind, c.field, _shown(c.current), _shown(c.proposed), c.note]
        for c in changes
    ]
    output.table(["", "kind", "field", "current", "proposed", "note"], rows)
    summary = result.as_dict()["summary"]
    counts = ", ".join(f"{v} {k.replace('_', '-')}" for k, v in summary.items() if v)
    read = f"{len(result.pages)} page(s) read; " if result.pages else ""
    if result.applied:
        output.result(
            f"✓ {result.bot_id} at config version {result.config_version}: "
            f"{', '.join(result.changed)} ({read}{counts})"
        )
    elif result.proposal.to_apply:
        output.result(f"dry run: {read}{counts}; nothing written. Apply the '+' rows with --apply")
    else:
        output.result(f"nothing to apply: {read}{counts}")
