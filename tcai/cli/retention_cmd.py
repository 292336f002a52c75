"""`tcai retention purge`: delete what is past each workspace's retention days."""

from __future__ import annotations

import typer

from tcai.cli import output
from tcai.cli.context import state
from tcai.cli.options import DryRunOpt, JsonOpt

app = typer.Typer(
    help="Retention: purge data past each client's retention days.", no_args_is_help=True
)


def _detail(counts: dict[str, int]) -> str:
    return ", ".join(f"{table} {count}" for table, count in counts.items() if count) or "-"


@app.command("purge")
def purge_(ctx: typer.Context, dry_run: DryRunOpt = False, json_: JsonOpt = False) -> None:
    """Delete conversations, leads and logs older than each client's retention days."""
    from tcai.records.retention import DEFAULT_LOG_DAYS, purge

    cli = state(ctx)
    report = purge(
        cli.migrated_engine(),
        dry_run=dry_run,
        actor=cli.actor,
        demo_safe_mode=cli.settings.demo_safe_mode,
    )
    if json_:
        output.emit_json(report.as_dict())
        return
    rows = [
        (
            item.slug,
            "/".join(str(item.days[k]) for k in ("conversation", "lead", "log")),
            "skipped (demo)" if item.skipped else sum(item.counts.values()),
            _detail(item.counts),
        )
        for item in report.workspaces
    ]
    rows.append(
        (
            "(no client)",
            f"-/-/{DEFAULT_LOG_DAYS}",
            sum(report.unassigned.values()),
            _detail(report.unassigned),
        )
    )
    header = "would delete" if dry_run else "deleted"
    output.table(["client", "days (conv/lead/log)", header, "rows by table"], rows)
    for slug in report.skipped:
        output.warn(f"skipped {slug}: demo workspace protected by DEMO_SAFE_MODE")
    if dry_run:
        output.result(f"dry run: would delete {report.total} rows; nothing written")
    else:
        output.result(f"✓ deleted {report.total} rows in {report.batches} batches")
