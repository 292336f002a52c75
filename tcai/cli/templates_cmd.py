"""`tcai templates seed | validate | list | show | suggest`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tcai.cli import complete, output
from tcai.cli.context import state
from tcai.cli.options import DryRunOpt, JsonOpt
from tcai.errors import NotFound, UsageError

if TYPE_CHECKING:
    from tcai.quality.checks import CheckReport
    from tcai.templates.validation import ValidationReport

app = typer.Typer(help="Industry templates: seed, validate, browse.", no_args_is_help=True)

MAX_DESCRIPTION = 2000

DirOpt = Annotated[
    Path | None,
    typer.Option("--dir", help="Template files folder (default: the shipped templates)."),
]


@app.command("seed")
def seed(
    ctx: typer.Context, json_: JsonOpt = False, dry_run: DryRunOpt = False, dir_: DirOpt = None
) -> None:
    """Upsert every template file into the database in one transaction."""
    from tcai.templates.files import load_template_files
    from tcai.templates.store import seed_templates

    templates = load_template_files(dir_)
    engine = state(ctx).migrated_engine()
    with output.progress(len(templates), "seeding", enabled=not json_) as advance:
        report = seed_templates(engine, templates, dry_run=dry_run, on_progress=advance)
    if json_:
        output.emit_json(report.as_dict())
        return
    for r in report.results:
        changes = f" ({', '.join(r.changes)})" if r.changes else ""
        output.result(
            f"{r.action:<11} {r.template_id:<24} v{r.version}  {r.content_hash[:12]}{changes}"
        )
    counts = ", ".join(f"{n} {action}" for action, n in report.counts.items())
    if dry_run:
        output.result(f"dry run: {counts}; nothing was written")
    else:
        active = sum(1 for r in report.results if r.action != "deactivated")
        output.info(counts)
        output.result(f"✓ ALL {active} TEMPLATES SEEDED")


def _render_validation(report: ValidationReport, json_: bool) -> None:
    if json_:
        output.emit_json(report.as_dict())
    else:
        for problem in report.warnings:
            output.warn(problem.line())
        for problem in report.errors:
            output.fail(problem.line())
        total = len(report.checked)
        if report.ok:
            output.result(f"✓ ALL {total}/{total} TEMPLATES VALIDATED")
        else:
            failed = len(report.failed_ids())
            output.result(
                f"✗ {failed} TEMPLATE(S) FAILED VALIDATION, {len(report.errors)} problem(s)"
            )
    if not report.ok:
        raise typer.Exit(1)


@app.command("validate")
def validate(
    ctx: typer.Context,
    json_: JsonOpt = False,
    files: Annotated[
        bool, typer.Option("--files", help="Check the template files instead of the database.")
    ] = False,
    dir_: DirOpt = None,
) -> None:
    """Check every stored template against the schema and the platform's rules."""
    from tcai.templates.validation import validate_files, validate_stored

    if files:
        from tcai.templates.files import load_template_files

        _render_validation(validate_files(load_template_files(dir_)), json_)
        return
    from tcai.db.engine import session_scope
    from tcai.templates.store import as_stored, stored_templates

    with session_scope(state(ctx).migrated_engine()) as session:
        rows = [as_stored(row) for row in stored_templates(session)]
    _render_validation(validate_stored(rows), json_)


@app.command("list")
def list_(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """List the stored templates in display order."""
    from tcai.db.engine import session_scope
    from tcai.templates.store import stored_templates, template_summary

    with session_scope(state(ctx).migrated_engine()) as session:
        items = [template_summary(row) for row in stored_templates(session)]
    output.listing(
        items,
        [
            ("template_id", "template_id"),
            ("key", "key"),
            ("name", "name"),
            ("version", "version"),
            ("active", lambda i: "yes" if i["is_active"] else "no"),
        ],
        json_=json_,
        empty="no templates stored yet; run `tcai templates seed`",
    )


@app.command("show")
def show(
    ctx: typer.Context,
    template: Annotated[
        str, typer.Argument(help="Key or id, e.g. barber.", autocompletion=complete.template_ids)
    ],
    json_: JsonOpt = False,
) -> None:
    """Show one stored template in full."""
    from tcai.db.engine import session_scope
    from tcai.templates.describe import describe
    from tcai.templates.schema import Template
    from tcai.templates.store import get_template_row, template_summary

    with session_scope(state(ctx).migrated_engine()) as session:
        row = get_template_row(session, template)
        document = {**template_summary(row), "document": row.document}
    if json_:
        output.emit_json(document)
        return
    for line in describe(Template.model_validate(row.document)):
        output.result(line)
    if not row.is_active:
        output.info(
            "this template is deactivated (its file is gone); bots made from it keep working"
        )


@app.command("suggest")
def suggest_command(
    ctx: typer.Context,
    description: Annotated[str, typer.Argument(help="The business in a few words.")],
    json_: JsonOpt = False,
    limit: Annotated[int, typer.Option("--limit", min=1, max=17)] = 3,
) -> None:
    """Suggest templates for a business description, best match first."""
    if not description.strip() or len(description) > MAX_DESCRIPTION:
        raise UsageError(f"describe the business in 1 to {MAX_DESCRIPTION} characters")
    from tcai.db.engine import session_scope
    from tcai.templates.schema import Template
    from tcai.templates.store import stored_templates
    from tcai.templates.suggest import suggest

    with session_scope(state(ctx).migrated_engine()) as session:
        active = [
            (row.display_order, Template.model_validate(row.document))
            for row in stored_templates(session)
            if row.is_active
        ]
    if not active:
        raise NotFound("no templates stored yet; run `tcai templates seed`")
    ranked = suggest(description, active)[:limit]
    if json_:
        output.emit_json(
            [
                {
                    "template_id": s.template_id,
                    "key": s.key,
                    "name": s.name,
                    "score": s.score,
                    "matched": list(s.matched),
                }
                for s in ranked
            ]
        )
    else:
        for s in ranked:
            output.result(
                f"{s.template_id:<24} {s.name:<28} score {s.score}  ({', '.join(s.matched)})"
            )
    if not ranked:
        raise NotFound(f"no template matches '{description}'; see tcai templates list")


def _render_checks(report: CheckReport, json_: bool, success: str) -> None:
    if json_:
        output.emit_json(report.as_dict())
    else:
        for item in report.failed:
            output.fail(f"{item.name}: {item.message}")
        summary = report.as_dict()
        output.info(f"{summary['total']} checks in {report.seconds:.1f} s")
        output.result(
            success if report.ok else f"✗ {summary['failed']} of {summary['total']} checks FAILED"
        )
    if not report.ok:
        raise typer.Exit(1)


@app.command("smoke")
def smoke(
    ctx: typer.Context,
    json_: JsonOpt = False,
    only: Annotated[list[str] | None, typer.Option("--only", help="Just these templates.")] = None,
) -> None:
    """Provision a throw-away client per template and run scripted chats (offline and stub LLM)."""
    import asyncio

    from tcai.quality.smoke import run_smoke

    cli = state(ctx)
    engine = cli.migrated_engine()
    with output.progress(17, "smoke", enabled=not json_) as advance:
        report = asyncio.run(run_smoke(cli.settings, engine, only=only or (), on_progress=advance))
    count = len({item.name.split(":")[0] for item in report.items})
    _render_checks(report, json_, f"✓ ALL {count} TEMPLATES PASSED SMOKE TEST")


@app.command("sweep")
def sweep(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """The industry matrix: booking links and decisions, references, crisis, payment freedom."""
    from tcai.db.engine import session_scope
    from tcai.quality.sweep import run_sweep
    from tcai.templates.schema import Template
    from tcai.templates.store import stored_templates

    with session_scope(state(ctx).migrated_engine()) as session:
        templates = [
            Template.model_validate(r.document) for r in stored_templates(session) if r.is_active
        ]
    report = run_sweep(templates)
    if json_:
        output.emit_json(report.as_dict())
    else:
        for item in report.failed:
            output.fail(f"{item.name}: {item.message}")
        summary = report.as_dict()
        output.result(f"Total tests: {summary['total']}")
        output.result(f"Passed: {summary['passed']}")
        output.result(f"Failed: {summary['failed']}")
    if not report.ok:
        raise typer.Exit(1)
