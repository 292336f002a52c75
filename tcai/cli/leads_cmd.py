"""`tcai leads`: list, export, change one lead's status, and recover the spool."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from tcai.cli import complete, output
from tcai.cli.context import state
from tcai.cli.options import JsonOpt, SinceOpt, StatusOpt, WorkspaceOpt
from tcai.errors import UsageError

MAX_LEAD_ID = 2**31 - 1
"""Lead ids are 32-bit integers on PostgreSQL; a larger number names no lead."""

leads_app = typer.Typer(
    help="Leads: list, export, change status, recover the spool.", no_args_is_help=True
)


@leads_app.command("list")
def leads_list(
    ctx: typer.Context,
    workspace: WorkspaceOpt,
    status: StatusOpt = None,
    since: SinceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """A workspace's leads, newest first."""
    from tcai.records.leads import list_leads, parse_since

    rows = list_leads(
        state(ctx).migrated_engine(), workspace, status=status, since=parse_since(since)
    )
    output.listing(
        rows,
        [
            ("id", "lead_id"),
            ("created", lambda r: r["created_at"][:16]),
            ("name", "name"),
            ("phone", "phone"),
            ("email", "email"),
            ("status", "status"),
            ("priority", "priority"),
            ("booking", "booking_status"),
        ],
        json_=json_,
        empty="no leads",
    )


@leads_app.command("export")
def leads_export(
    ctx: typer.Context,
    workspace: WorkspaceOpt,
    status: StatusOpt = None,
    since: SinceOpt = None,
    format_: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    bom: Annotated[
        bool, typer.Option("--bom", help="Start the CSV with a UTF-8 BOM (for Excel).")
    ] = False,
    output_file: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (mode 0600).")
    ] = None,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw",
            help="CSV for programs: values as stored (E.164 phones), no formula guard. "
            "Never open it in a spreadsheet.",
        ),
    ] = False,
) -> None:
    """Export a workspace's leads as CSV (safe against spreadsheet formulas, phones as
    text) or JSON."""
    if format_ not in ("csv", "json"):
        raise UsageError("--format must be csv or json")
    from tcai.records.leads import list_leads, parse_since, to_csv

    rows = list_leads(
        state(ctx).migrated_engine(), workspace, status=status, since=parse_since(since)
    )
    if format_ == "json":
        import json

        text = json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    else:
        text = to_csv(rows, bom=bom, raw=raw)
    if output_file is None:
        sys.stdout.write(text)
        return
    fd = os.open(output_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    output.info(f"wrote {len(rows)} lead(s) to {output_file}")


@leads_app.command("status")
def leads_status(
    ctx: typer.Context,
    lead: Annotated[str, typer.Argument(metavar="LEAD", help="The lead id (tcai leads list).")],
    status: Annotated[str, typer.Argument(metavar="STATUS", help="new, contacted, won or lost.")],
    workspace: Annotated[
        str | None,
        typer.Option(
            "--workspace",
            "-w",
            help="Only a lead of this client.",
            autocompletion=complete.client_ids,
        ),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Move a lead to new, contacted, won or lost (audited; won is stored as converted)."""
    if not lead.strip().isdigit() or not 1 <= int(lead) <= MAX_LEAD_ID:
        raise UsageError(
            f"LEAD must be a lead id, a number as `tcai leads list` shows; got '{lead}'"
        )
    from tcai.bots.clients import change_lead_status

    cli = state(ctx)
    result = change_lead_status(
        cli.migrated_engine(), int(lead), status, actor=cli.actor, client=workspace
    )
    if json_:
        output.emit_json(result)
    elif result["changed"]:
        output.result(
            f"✓ lead {result['lead_id']} of {result['client_id']}: "
            f"{result['previous_status']} → {result['status']}"
        )
    else:
        output.result(f"no change; lead {result['lead_id']} is already {result['status']}")


@leads_app.command("recover")
def leads_recover(
    ctx: typer.Context,
    spool: Annotated[
        Path | None, typer.Option("--spool", help="Default: $LOG_DIR/lead-spool.jsonl.")
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Import leads the chat engine spooled when the database refused them (idempotent)."""
    cli = state(ctx)
    from tcai.chat.recovery import recover_spool
    from tcai.chat.spool import default_spool

    path = spool or default_spool(cli.settings.log_dir)
    report = recover_spool(cli.migrated_engine(), path)
    if json_:
        output.emit_json({**report.as_dict(), "spool": str(path)})
    else:
        output.result(
            f"✓ {report.imported} lead(s) imported, {report.already_present} already present"
            + (f", {len(report.failed)} kept in the spool" if report.failed else "")
        )
        for line in report.failed:
            output.warn(line)
    if report.failed:
        raise typer.Exit(1)
