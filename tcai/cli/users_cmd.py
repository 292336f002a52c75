"""`tcai users`: operator and owner accounts, and invitations to a workspace."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from tcai.cli import complete, output
from tcai.cli.context import state
from tcai.cli.options import JsonOpt
from tcai.errors import UsageError

users_app = typer.Typer(help="Operator and owner accounts.", no_args_is_help=True)
ROLES_HELP = "owner, manager, staff, agent or viewer."


def _password(prompt_twice: bool) -> str:
    """The password from TCAI_PASSWORD (for scripts) or a hidden prompt; never an argument."""
    from_env = os.environ.get("TCAI_PASSWORD")
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise UsageError("give the password in TCAI_PASSWORD or run on a terminal to be asked")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=prompt_twice))


def _roles(row: dict[str, Any]) -> str:
    """`super_admin`, `fade-factory:owner, clip-joint:viewer`, or `none`."""
    roles = ["super_admin"] if row["global_role"] == "super_admin" else []
    roles += [f"{m['client_id']}:{m['role']}" for m in row["memberships"]]
    return ", ".join(roles) or "none"


@users_app.command("create")
def users_create(
    ctx: typer.Context,
    email: Annotated[str, typer.Option("--email")],
    workspace: Annotated[
        str | None,
        typer.Option(
            "--workspace", "-w", help="Add as a member of it.", autocompletion=complete.client_ids
        ),
    ] = None,
    role: Annotated[
        str | None, typer.Option("--role", help=f"In --workspace (default owner): {ROLES_HELP}")
    ] = None,
    super_admin: Annotated[bool, typer.Option("--super-admin")] = False,
    json_: JsonOpt = False,
) -> None:
    """Create an account (password from TCAI_PASSWORD or a prompt)."""
    from tcai.access.users import check_new_user, create_user

    if role is not None and not workspace:
        raise UsageError("--role needs --workspace (the role is the one held in it)")
    cli = state(ctx)
    engine = cli.migrated_engine()
    member_role = role or "owner"
    # Everything that can be refused is refused before anyone types a password.
    check_new_user(engine, email, workspace=workspace, role=member_role)
    summary = create_user(
        engine,
        email,
        _password(True),
        super_admin=super_admin,
        workspace=workspace,
        role=member_role,
        actor=cli.actor,
    )
    if json_:
        output.emit_json(summary)
    else:
        output.result(f"✓ created {summary['email']} ({_roles(summary)})")


@users_app.command("list")
def users_list(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """Accounts with their role in each workspace (no hashes)."""
    from tcai.access.users import list_users

    rows = list_users(state(ctx).migrated_engine())
    output.listing(
        rows,
        [
            ("email", "email"),
            ("roles", _roles),
            ("status", "status"),
            ("last login", "last_login_at"),
        ],
        json_=json_,
        empty="no accounts yet; create one with `tcai users create`",
    )


@users_app.command("invite")
def users_invite(
    ctx: typer.Context,
    email: Annotated[str, typer.Option("--email")],
    workspace: Annotated[
        str,
        typer.Option(
            "--workspace", "-w", help="The workspace's slug.", autocompletion=complete.client_ids
        ),
    ],
    role: Annotated[str, typer.Option("--role", help=ROLES_HELP)],
    ttl: Annotated[
        str, typer.Option("--ttl", help="How long the link works: 5m to 7d (default 72h).")
    ] = "72h",
    url: Annotated[
        str | None,
        typer.Option("--url", help="The daemon's public URL (default http://HOST:PORT)."),
    ] = None,
    json_: JsonOpt = False,
) -> None:
    """Invite someone to a workspace: prints a one-time link that lets them set a password."""
    from tcai.access.invites import create_invite, invite_url
    from tcai.access.tokens import parse_duration
    from tcai.access.users import account_email

    cli = state(ctx)
    lifetime = parse_duration(ttl)
    base = cli.public_url(url)
    token, expires = create_invite(
        cli.migrated_engine(), email, workspace, role, lifetime, cli.actor
    )
    link = invite_url(base, token)
    until = expires.strftime("%Y-%m-%d %H:%M UTC")
    if json_:
        output.emit_json(
            {
                "email": account_email(email),
                "client_id": workspace,
                "role": role,
                "url": link,
                "expires_at": expires.isoformat(),
            }
        )
    else:
        output.result(link)
    output.info(f"✓ invited to {workspace} as {role}; the link works once, until {until}")
    output.info("send it to them yourself: tcai does not e-mail invitations")
    if cli.settings.is_production and base.startswith("http://"):
        output.warn("the link is plain http; give --url https://… so the password travels safely")


@users_app.command("passwd")
def users_passwd(
    ctx: typer.Context, email: Annotated[str, typer.Argument()], json_: JsonOpt = False
) -> None:
    """Set a new password; the account's sessions end."""
    from tcai.access.users import account_email, change_password

    cli = state(ctx)
    ended = change_password(cli.migrated_engine(), email, _password(True), actor=cli.actor)
    if json_:
        output.emit_json(
            {"email": account_email(email), "password_changed": True, "sessions_ended": ended}
        )
    else:
        output.result(f"✓ password changed; {ended} session(s) ended")


@users_app.command("unlock")
def users_unlock(
    ctx: typer.Context, email: Annotated[str, typer.Argument()], json_: JsonOpt = False
) -> None:
    """End a lockout after too many failed logins (the failure count starts again)."""
    from tcai.access.users import unlock

    cli = state(ctx)
    done = unlock(cli.migrated_engine(), email, actor=cli.actor)
    if json_:
        output.emit_json(
            {
                "email": done.email,
                "was_locked": done.was_locked,
                "locked_until": done.locked_until.isoformat() if done.locked_until else None,
                "failed_logins_cleared": done.failed_count,
            }
        )
        return
    cleared = f"; {done.failed_count} failed login(s) cleared" if done.failed_count else ""
    if done.was_locked and done.locked_until is not None:
        until = done.locked_until.strftime("%Y-%m-%d %H:%M UTC")
        output.result(f"✓ unlocked {done.email}: it was locked until {until}{cleared}")
    else:
        output.result(f"✓ {done.email} was not locked{cleared}")


@users_app.command("disable")
def users_disable(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument()],
    enable: Annotated[bool, typer.Option("--enable", help="Re-enable instead.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Disable an account (its sessions end, its pending invitation is withdrawn) or
    re-enable it."""
    from tcai.access.users import account_email, set_disabled

    cli = state(ctx)
    ended = set_disabled(cli.migrated_engine(), email, not enable, actor=cli.actor)
    if json_:
        output.emit_json(
            {"email": account_email(email), "disabled": not enable, "sessions_ended": ended}
        )
        return
    output.result("✓ enabled" if enable else f"✓ disabled; {ended} session(s) ended")
