"""`tcai privacy export | erase`: one person's data, found by e-mail or phone."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tcai.cli import complete, output
from tcai.cli.context import state
from tcai.cli.options import JsonOpt
from tcai.errors import UsageError

if TYPE_CHECKING:
    from tcai.records.privacy import ErasureReceipt

app = typer.Typer(
    help="One person's data: export it, or erase it from every table.", no_args_is_help=True
)

EmailOpt = Annotated[
    str | None, typer.Option("--email", help="The person's e-mail address.", show_default=False)
]
PhoneOpt = Annotated[
    str | None, typer.Option("--phone", help="The person's phone number.", show_default=False)
]
WorkspaceOpt = Annotated[
    str | None,
    typer.Option(
        "--workspace",
        help="Only this client's records (default: every client's and global).",
        autocompletion=complete.client_ids,
    ),
]


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


@app.command("export")
def export(
    ctx: typer.Context,
    email: EmailOpt = None,
    phone: PhoneOpt = None,
    workspace: WorkspaceOpt = None,
    output_file: Annotated[
        Path | None,
        typer.Option("--output", help="Write the JSON document here (mode 0600), not stdout."),
    ] = None,
) -> None:
    """Every record about one person, as one JSON document."""
    from tcai.access.rotation import write_atomically
    from tcai.records.privacy import export_person

    if output_file is not None and not output_file.parent.is_dir():
        raise UsageError(f"--output: folder {output_file.parent} does not exist")
    cli = state(ctx)
    document = export_person(
        cli.migrated_engine(), email=email, phone=phone, workspace=workspace, actor=cli.actor
    )
    if output_file is None:
        output.emit_json(document)
        return
    text = json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"
    write_atomically(output_file, text)
    output.info(f"✓ wrote {document['total']} records to {output_file} (mode 0600)")


def _confirm(preview: dict[str, int], workspace: str | None) -> None:
    where = f"client {workspace}" if workspace else "every client and the global logs"
    found = ", ".join(f"{table} {count}" for table, count in preview.items() if count)
    output.info(f"found in {where}: {found or 'nothing'}")
    if not typer.confirm("Erase or anonymise all of it? This cannot be undone", err=True):
        raise typer.Abort()


def _render(receipt: ErasureReceipt) -> None:
    where = f"client {receipt.workspace}" if receipt.workspace else "all clients"
    who = f"{receipt.kind} sha256:{receipt.identifier_sha256[:16]}"
    if receipt.nothing_found:
        output.result(f"nothing found for that {receipt.kind} in {where}; nothing erased")
        return
    rows = [(table, count, "deleted") for table, count in receipt.deleted.items() if count]
    rows += [(table, count, "anonymised") for table, count in receipt.anonymised.items() if count]
    output.table(["table", "rows", "action"], rows, title=f"erasure receipt: {who}")
    output.result(f"✓ erased {who} from {where} at {receipt.erased_at.isoformat()}")


@app.command("erase")
def erase(
    ctx: typer.Context,
    email: EmailOpt = None,
    phone: PhoneOpt = None,
    workspace: WorkspaceOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Erase one person: delete their records, anonymise logs; one transaction, audited."""
    from tcai.records.privacy import count_person, erase_person, parse_identifier

    parse_identifier(email=email, phone=phone)  # bad input is reported before anything else
    cli = state(ctx)
    engine = cli.migrated_engine()
    if not yes:
        if not _stdin_is_terminal():
            raise UsageError(
                "erasing cannot be undone; add --yes to confirm when not on a terminal"
            )
        preview = count_person(engine, email=email, phone=phone, workspace=workspace)
        if any(preview.values()):
            _confirm(preview, workspace)
    receipt = erase_person(
        engine,
        email=email,
        phone=phone,
        workspace=workspace,
        actor=cli.actor,
        demo_safe_mode=cli.settings.demo_safe_mode,
    )
    if json_:
        output.emit_json(receipt.as_dict())
    else:
        _render(receipt)
