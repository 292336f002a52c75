"""Operator and owner accounts: create, list, change password, unlock, disable.

Passwords are hashed with argon2id (argon2-cffi) at the OWASP/ASVS 5 floor
(t=1, m=46 MiB, p=1: about 0.1 s here), never stored or logged in clear. The policy
follows ASVS 5 §6.2: at least 12 characters, at most 128, no composition rules, not a
common password, not the account's own e-mail. Lockout lives in the database (the
`lockout` table, keyed by the lower-cased e-mail so it reveals nothing about which
accounts exist; `tcai.access.auth` counts the failures, `unlock` ends them); disabling an
account ends its sessions and withdraws its pending invitations. Invitations themselves
are `tcai.access.invites`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from tcai.audit import record_audit
from tcai.data import data_file
from tcai.db.engine import session_scope
from tcai.db.models import (
    GLOBAL_ROLES,
    MEMBERSHIP_ROLES,
    Lockout,
    Membership,
    User,
    UserInvite,
    UserSession,
    Workspace,
)
from tcai.db.types import utcnow
from tcai.errors import Conflict, InvalidInput, NotFound
from tcai.text.contacts import normalise_email

MIN_PASSWORD = 12
MAX_PASSWORD = 128
COMMON_FILE = data_file("common_passwords.txt")


@cache
def hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=47_104, parallelism=1)


@cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(
        line.strip().lower() for line in lines if line.strip() and not line.startswith("#")
    )


def password_problems(password: str, email: str) -> list[str]:
    problems = []
    if len(password) < MIN_PASSWORD:
        problems.append(f"use at least {MIN_PASSWORD} characters (a few words make a good one)")
    if len(password) > MAX_PASSWORD:
        problems.append(f"use at most {MAX_PASSWORD} characters")
    lowered = password.lower()
    if lowered in common_passwords() or lowered.rstrip("0123456789!.?#*") in common_passwords():
        problems.append("it is one of the most common passwords")
    local = email.split("@", 1)[0].lower()
    if len(local) >= 4 and local in lowered:
        problems.append("it contains the account's e-mail name")
    if len(set(password)) < 4:
        problems.append("it repeats too few different characters")
    return problems


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return hasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def account_email(value: str) -> str:
    email = normalise_email(value)
    if email is None:
        raise InvalidInput(f"--email: '{value}' is not a usable e-mail address")
    return email


def check_password(password: str, email: str) -> None:
    problems = password_problems(password, email)
    if problems:
        raise InvalidInput("the password is not accepted: " + "; ".join(problems))


def get_user(session: Session, email: str) -> User:
    user = session.exec(select(User).where(User.email == account_email(email))).first()
    if user is None:
        raise NotFound(f"no user '{email}'; see tcai users list")
    return user


def check_role(role: str) -> str:
    if role not in MEMBERSHIP_ROLES:
        raise InvalidInput(
            f"--role: '{role}' is not a role; use one of {', '.join(MEMBERSHIP_ROLES)}"
        )
    return role


def workspace_by_slug(session: Session, slug: str) -> Workspace:
    ws = session.exec(select(Workspace).where(Workspace.slug == slug)).first()
    if ws is None:
        raise NotFound(f"no workspace '{slug}'; see tcai clients list")
    return ws


def check_new_user(
    engine: Engine, email: str, *, workspace: str | None = None, role: str = "owner"
) -> str:
    """What `create_user` would refuse, checked before anyone is asked for a password:
    the address, the role, the workspace, an existing account. Returns the address."""
    address = account_email(email)
    check_role(role)
    with session_scope(engine) as session:
        if session.exec(select(User.id).where(User.email == address)).first() is not None:
            raise Conflict(f"a user '{address}' already exists; nothing written")
        if workspace:
            workspace_by_slug(session, workspace)
    return address


def create_user(
    engine: Engine,
    email: str,
    password: str,
    *,
    super_admin: bool = False,
    workspace: str | None = None,
    role: str = "owner",
    actor: str = "cli",
) -> dict[str, Any]:
    address = account_email(email)
    check_role(role)
    check_password(password, address)
    password_hash = hash_password(password)  # ~0.1 s of CPU, outside the transaction
    with session_scope(engine) as session:
        if session.exec(select(User.id).where(User.email == address)).first() is not None:
            raise Conflict(f"a user '{address}' already exists; nothing written")
        ws = workspace_by_slug(session, workspace) if workspace else None
        user = User(
            email=address,
            password_hash=password_hash,
            global_role=GLOBAL_ROLES[1] if super_admin else GLOBAL_ROLES[0],
        )
        session.add(user)
        session.flush()
        if ws is not None:
            session.add(Membership(workspace_id=ws.id or 0, user_id=user.id or 0, role=role))
        record_audit(
            session,
            actor=actor,
            action="user.create",
            target=address,
            workspace_id=ws.id if ws else None,
            after={
                "global_role": user.global_role,
                "workspace": workspace,
                "role": role if ws else None,
            },
        )
        session.flush()
        return _summaries(session, [user])[0]


def user_summary(
    user: User,
    memberships: list[tuple[str, str]] | None = None,
    invite_expires_at: datetime | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """One account as the CLI shows it (never its hash). `memberships` are (workspace
    slug, role) pairs; `invite_expires_at` is the end of its pending invitation."""
    if not user.disabled:
        status = "active"
    elif invite_expires_at is None:
        status = "disabled"
    else:
        status = "invited" if invite_expires_at > (now or utcnow()) else "invite expired"
    return {
        "email": user.email,
        "global_role": user.global_role,
        "memberships": [{"client_id": slug, "role": role} for slug, role in memberships or []],
        "status": status,
        "disabled": user.disabled,
        "must_change_password": user.must_change_password,
        "invite_expires_at": invite_expires_at.isoformat() if invite_expires_at else None,
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
        "created_at": user.created_at.isoformat(),
    }


def _summaries(session: Session, users: list[User]) -> list[dict[str, Any]]:
    ids = [u.id for u in users if u.id is not None]
    roles: dict[int, list[tuple[str, str]]] = {}
    for user_id, slug, role in session.exec(
        select(Membership.user_id, Workspace.slug, Membership.role)
        .join(Workspace, col(Workspace.id) == col(Membership.workspace_id))
        .where(col(Membership.user_id).in_(ids))
        .order_by(col(Workspace.slug))
    ):
        roles.setdefault(user_id, []).append((slug, role))
    invites: dict[int, datetime] = {}
    for user_id, expires_at in session.exec(
        select(UserInvite.user_id, UserInvite.expires_at).where(
            col(UserInvite.user_id).in_(ids),
            col(UserInvite.accepted_at).is_(None),
            col(UserInvite.revoked_at).is_(None),
        )
    ):
        invites[user_id] = max(expires_at, invites.get(user_id, expires_at))
    return [user_summary(u, roles.get(u.id or 0, []), invites.get(u.id or 0)) for u in users]


def list_users(engine: Engine) -> list[dict[str, Any]]:
    """Every account with its role in each workspace (`memberships`) and its status
    (active, disabled, invited, invite expired)."""
    with session_scope(engine) as session:
        users = list(session.exec(select(User).order_by(col(User.email))))
        return _summaries(session, users)


def end_sessions(session: Session, user_id: int) -> int:
    result = session.execute(
        sa.update(UserSession)
        .where(col(UserSession.user_id) == user_id, col(UserSession.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def change_password(engine: Engine, email: str, password: str, *, actor: str = "cli") -> int:
    with session_scope(engine) as session:
        user = get_user(session, email)
        check_password(password, user.email)
        user.password_hash = hash_password(password)
        user.must_change_password = False
        user.updated_at = utcnow()
        session.add(user)
        ended = end_sessions(session, user.id or 0)
        record_audit(
            session,
            actor=actor,
            action="user.passwd",
            target=user.email,
            after={"sessions_ended": ended},
        )
        return ended


@dataclass(frozen=True)
class Unlocked:
    email: str
    was_locked: bool
    """Locked out at the moment of unlocking (its `locked_until` still ahead)."""
    locked_until: datetime | None
    failed_count: int
    """Failed logins counted so far (cleared too)."""


def unlock(
    engine: Engine, email: str, *, actor: str = "cli", now: datetime | None = None
) -> Unlocked:
    """End a lockout: clear the failure count and the lock of the account's e-mail (the
    key `tcai.access.auth` counts under). Works for an address with no account, too."""
    address = account_email(email)
    at = now or utcnow()
    with session_scope(engine) as session:
        user = session.exec(select(User.id).where(User.email == address)).first()
        lockout = session.exec(select(Lockout).where(Lockout.email == address)).first()
        if user is None and lockout is None:
            raise NotFound(f"no user '{email}' and no lockout for it; see tcai users list")
        until = lockout.locked_until if lockout else None
        count = lockout.failed_count if lockout else 0
        was_locked = until is not None and until > at
        if lockout is not None:
            session.execute(
                sa.update(Lockout)
                .where(col(Lockout.email) == address)
                .values(failed_count=0, locked_until=None, updated_at=at)
            )
        record_audit(
            session,
            actor=actor,
            action="user.unlock",
            target=address,
            after={"was_locked": was_locked, "failed_count": count},
        )
        return Unlocked(address, was_locked, until if was_locked else None, count)


def unlock_user(engine: Engine, email: str, *, actor: str = "cli") -> bool:
    """`unlock`, answering only whether the account was locked out."""
    return unlock(engine, email, actor=actor).was_locked


def withdraw_invites(session: Session, user_id: int, *, now: datetime) -> int:
    """Revoke the user's pending invitation links; returns how many."""
    result = session.execute(
        sa.update(UserInvite)
        .where(
            col(UserInvite.user_id) == user_id,
            col(UserInvite.accepted_at).is_(None),
            col(UserInvite.revoked_at).is_(None),
        )
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def set_disabled(engine: Engine, email: str, disabled: bool, *, actor: str = "cli") -> int:
    with session_scope(engine) as session:
        user = get_user(session, email)
        user.disabled = disabled
        user.updated_at = utcnow()
        session.add(user)
        ended = end_sessions(session, user.id or 0) if disabled else 0
        withdrawn = withdraw_invites(session, user.id or 0, now=utcnow()) if disabled else 0
        record_audit(
            session,
            actor=actor,
            action="user.disable" if disabled else "user.enable",
            target=user.email,
            after={"disabled": disabled, "sessions_ended": ended, "invites_withdrawn": withdrawn},
        )
        return ended
