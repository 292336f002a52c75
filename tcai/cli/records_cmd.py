"""`tcai leads`, `tcai conversations`, `tcai audit`, `tcai users`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from tcai.access.users import change_password, create_user, list_users, set_disabled, unlock_user
from tcai.audit import list_audit
from tcai.cli import output
from tcai.cli.context import state
from tcai.cli.options import JsonOpt
from tcai.db.engine import session_scope
from tcai.errors import UsageError
from tcai.records.conversations import list_conversations, show_conversation
from tcai.records.leads import get_workspace, list_leads, parse_since, to_csv

leads_app = typer.Typer(help="Leads: list, export, recover the spool.", no_args_is_help=True)
conversations_app = typer.Typer(help="Conversations and transcripts.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
users_app = typer.Typer(help="Operator and owner accounts.", no_args_is_help=True)

WorkspaceOpt = Annotated[
    str, typer.Option("--workspace", "-w", help="The client id (workspace slug).")
]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="2026-11-01, or an age such as 7d or 12h.")
]
StatusOpt = Annotated[
    str | None, typer.Option("--status", help="new, contacted, qualified, converted, lost.")
]


@leads_app.command("list")
def leads_list(
    ctx: typer.Context,
    workspace: WorkspaceOpt,
    status: StatusOpt = None,
    since: SinceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """A workspace's leads, newest first."""
    rows = list_leads(
        state(ctx).migrated_engine(), workspace, status=status, since=parse_since(since)
    )
    if json_:
        output.emit_json(rows)
    elif not rows:
        output.info("no leads")
    else:
        output.table(
            ["id", "created", "name", "phone", "email", "status", "priority", "booking"],
            [
                (
                    r["lead_id"],
                    r["created_at"][:16],
                    r["name"],
                    r["phone"],
                    r["email"],
                    r["status"],
                    r["priority"],
                    r["booking_status"],
                )
                for r in rows
            ],
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
) -> None:
    """Export a workspace's leads as CSV (safe against spreadsheet formulas) or JSON."""
    if format_ not in ("csv", "json"):
        raise UsageError("--format must be csv or json")
    rows = list_leads(
        state(ctx).migrated_engine(), workspace, status=status, since=parse_since(since)
    )
    if format_ == "json":
        import json

        text = json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    else:
        text = to_csv(rows, bom=bom)
    if output_file is None:
        sys.stdout.write(text)
        return
    fd = os.open(output_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    output.info(f"wrote {len(rows)} lead(s) to {output_file}")


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


@conversations_app.command("list")
def conversations_list(
    ctx: typer.Context,
    workspace: WorkspaceOpt,
    bot: Annotated[str | None, typer.Option("--bot")] = None,
    flagged: Annotated[
        bool, typer.Option("--flagged", help="Only those flagged for review.")
    ] = False,
    since: SinceOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
    json_: JsonOpt = False,
) -> None:
    """A workspace's conversations, most recent first."""
    rows = list_conversations(
        state(ctx).migrated_engine(),
        workspace,
        bot_id=bot,
        flagged=flagged,
        since=parse_since(since),
        limit=limit,
    )
    if json_:
        output.emit_json(rows)
    elif not rows:
        output.info("no conversations")
    else:
        output.table(
            ["id", "bot", "session", "last activity", "messages", "flags", "lead"],
            [
                (
                    r["conversation_id"],
                    r["bot_id"],
                    r["session_id"],
                    r["last_activity_at"][:16],
                    r["messages"],
                    ",".join(r["flags"]),
                    r["lead_id"],
                )
                for r in rows
            ],
        )


@conversations_app.command("show")
def conversations_show(
    ctx: typer.Context,
    conversation: Annotated[str, typer.Argument(help="Conversation id or session id.")],
    workspace: Annotated[str | None, typer.Option("--workspace", "-w")] = None,
    json_: JsonOpt = False,
) -> None:
    """A transcript, with the source of each answer."""
    document = show_conversation(state(ctx).migrated_engine(), conversation, workspace)
    if json_:
        output.emit_json(document)
        return
    flags = f" [{', '.join(document['flags'])}]" if document["flags"] else ""
    output.result(f"conversation {document['conversation_id']} on {document['bot_id']}{flags}")
    for message in document["transcript"]:
        who = "visitor" if message["role"] == "user" else f"bot ({message['source']})"
        output.result(f"{message['at'][:19]}  {who}: {message['text']}")


@audit_app.command("list")
def audit_list_command(
    ctx: typer.Context,
    workspace: Annotated[str | None, typer.Option("--workspace", "-w")] = None,
    actor: Annotated[str | None, typer.Option("--actor")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Exact action or prefix, e.g. bot.")
    ] = None,
    since: SinceOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 200,
    json_: JsonOpt = False,
) -> None:
    """Audit entries, newest first."""
    with session_scope(state(ctx).migrated_engine()) as session:
        workspace_id = get_workspace(session, workspace).id if workspace else None
        rows = list_audit(
            session,
            workspace_id=workspace_id,
            actor=actor,
            action=action,
            since=parse_since(since),
            limit=limit,
        )
    if json_:
        output.emit_json(rows)
    elif not rows:
        output.info("no audit entries")
    else:
        output.table(
            ["at", "actor", "action", "target", "reason"],
            [(r["at"][:19], r["actor"], r["action"], r["target"], r["reason"]) for r in rows],
        )


def _password(prompt_twice: bool) -> str:
    """The password from TCAI_PASSWORD (for scripts) or a hidden prompt; never an argument."""
    from_env = os.environ.get("TCAI_PASSWORD")
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise UsageError("give the password in TCAI_PASSWORD or run on a terminal to be asked")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=prompt_twice))


@users_app.command("create")
def users_create(
    ctx: typer.Context,
    email: Annotated[str, typer.Option("--email")],
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", help="Add as a member of it.")
    ] = None,
    role: Annotated[
        str, typer.Option("--role", help="owner, manager, staff, agent or viewer.")
    ] = "owner",
    super_admin: Annotated[bool, typer.Option("--super-admin")] = False,
    json_: JsonOpt = False,
) -> None:
    """Create an account (password from TCAI_PASSWORD or a prompt)."""
    summary = create_user(
        state(ctx).migrated_engine(),
        email,
        _password(True),
        super_admin=super_admin,
        workspace=workspace,
        role=role,
    )
    output.emit_json(summary) if json_ else output.result(f"✓ created {summary['email']}")


@users_app.command("list")
def users_list(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Accounts (no hashes)."""
    rows = list_users(state(ctx).migrated_engine())
    if json_:
        output.emit_json(rows)
    else:
        output.table(
            ["email", "role", "disabled", "last login"],
            [
                (r["email"], r["global_role"], "yes" if r["disabled"] else "no", r["last_login_at"])
                for r in rows
            ],
        )


@users_app.command("passwd")
def users_passwd(ctx: typer.Context, email: Annotated[str, typer.Argument()]) -> None:
    """Set a new password; the account's sessions end."""
    ended = change_password(state(ctx).migrated_engine(), email, _password(True))
    output.result(f"✓ password changed; {ended} session(s) ended")


@users_app.command("unlock")
def users_unlock(ctx: typer.Context, email: Annotated[str, typer.Argument()]) -> None:
    """Clear a lockout after too many failed logins."""
    was = unlock_user(state(ctx).migrated_engine(), email)
    output.result("✓ unlocked" if was else "✓ was not locked")


@users_app.command("disable")
def users_disable(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument()],
    enable: Annotated[bool, typer.Option("--enable", help="Re-enable instead.")] = False,
) -> None:
    """Disable an account (its sessions end) or re-enable it."""
    ended = set_disabled(state(ctx).migrated_engine(), email, not enable)
    output.result("✓ enabled" if enable else f"✓ disabled; {ended} session(s) ended")
