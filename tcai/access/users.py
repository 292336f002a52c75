"""Operator and owner accounts: create, change password, unlock, disable.

Passwords are hashed with argon2id (argon2-cffi) at the OWASP/ASVS 5 floor
(t=1, m=46 MiB, p=1: about 0.1 s here), never stored or logged in clear. The policy
follows ASVS 5 §6.2: at least 12 characters, at most 128, no composition rules, not a
common password, not the account's own e-mail. Lockout lives in the database (the
`lockout` table, keyed by e-mail so it reveals nothing about which accounts exist);
disabling an account ends its sessions.
"""

from __future__ import annotations

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


def _email(value: str) -> str:
    email = normalise_email(value)
    if email is None:
        raise InvalidInput(f"--email: '{value}' is not a usable e-mail address")
    return email


def _check_password(password: str, email: str) -> None:
    problems = password_problems(password, email)
    if problems:
        raise InvalidInput("the password is not accepted: " + "; ".join(problems))


def get_user(session: Session, email: str) -> User:
    user = session.exec(select(User).where(User.email == _email(email))).first()
    if user is None:
        raise NotFound(f"no user '{email}'; see tcai users list")
    return user


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
    address = _email(email)
    _check_password(password, address)
    if role not in MEMBERSHIP_ROLES:
        raise InvalidInput(f"--role: must be one of {', '.join(MEMBERSHIP_ROLES)}")
    with session_scope(engine) as session:
        if session.exec(select(User.id).where(User.email == address)).first() is not None:
            raise Conflict(f"a user '{address}' already exists; nothing written")
        ws = None
        if workspace:
            ws = session.exec(select(Workspace).where(Workspace.slug == workspace)).first()
            if ws is None:
                raise NotFound(f"no workspace '{workspace}'; see tcai clients list")
        user = User(
            email=address,
            password_hash=hash_password(password),
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
        return user_summary(user)


def user_summary(user: User) -> dict[str, Any]:
    return {
        "email": user.email,
        "global_role": user.global_role,
        "disabled": user.disabled,
        "must_change_password": user.must_change_password,
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
        "created_at": user.created_at.isoformat(),
    }


def list_users(engine: Engine) -> list[dict[str, Any]]:
    with session_scope(engine) as session:
        return [user_summary(u) for u in session.exec(select(User).order_by(col(User.email)))]


def _end_sessions(session: Session, user_id: int) -> int:
    result = session.execute(
        sa.update(UserSession)
        .where(col(UserSession.user_id) == user_id, col(UserSession.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


def change_password(engine: Engine, email: str, password: str, *, actor: str = "cli") -> int:
    with session_scope(engine) as session:
        user = get_user(session, email)
        _check_password(password, user.email)
        user.password_hash = hash_password(password)
        user.must_change_password = False
        user.updated_at = utcnow()
        session.add(user)
        ended = _end_sessions(session, user.id or 0)
        record_audit(
            session,
            actor=actor,
            action="user.passwd",
            target=user.email,
            after={"sessions_ended": ended},
        )
        return ended


def unlock_user(engine: Engine, email: str, *, actor: str = "cli") -> bool:
    with session_scope(engine) as session:
        user = get_user(session, email)
        lockout = session.exec(select(Lockout).where(Lockout.email == user.email)).first()
        was_locked = bool(lockout and (lockout.failed_count or lockout.locked_until))
        if lockout is not None:
            lockout.failed_count, lockout.locked_until, lockout.updated_at = 0, None, utcnow()
            session.add(lockout)
        record_audit(
            session,
            actor=actor,
            action="user.unlock",
            target=user.email,
            after={"was_locked": was_locked},
        )
        return was_locked


def set_disabled(engine: Engine, email: str, disabled: bool, *, actor: str = "cli") -> int:
    with session_scope(engine) as session:
        user = get_user(session, email)
        user.disabled = disabled
        user.updated_at = utcnow()
        session.add(user)
        ended = _end_sessions(session, user.id or 0) if disabled else 0
        record_audit(
            session,
            actor=actor,
            action="user.disable" if disabled else "user.enable",
            target=user.email,
            after={"disabled": disabled, "sessions_ended": ended},
        )
        return ended
