"""`tcai users`: operator and owner accounts."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from tcai.access.users import change_password, create_user, list_users, set_disabled, unlock_user
from tcai.cli import output
from tcai.cli.context import state
from tcai.cli.options import JsonOpt
from tcai.errors import UsageError

users_app = typer.Typer(help="Operator and owner accounts.", no_args_is_help=True)


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
    output.listing(
        rows,
        [
            ("email", "email"),
            ("role", "global_role"),
            ("disabled", lambda r: "yes" if r["disabled"] else "no"),
            ("last login", "last_login_at"),
        ],
        json_=json_,
        empty="no accounts yet; create one with `tcai users create`",
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
