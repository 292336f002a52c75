"""Invitations: a one-time link that lets a new user of a workspace choose a password.

`create_invite` makes the account (disabled, with a password nobody knows, and its
membership with the role) and a random token of which only the SHA-256 is stored; the
link `<base>/portal/invite/<token>` is printed by `tcai users invite`. `accept_invite`
takes the token and a password (the same policy as everywhere), enables the account and
spends the token: a second use, an expired token and a withdrawn one all fail the same
way, so the link tells nothing to whoever finds it later. Inviting the same person to
the same workspace again withdraws the earlier link.

An address that already has an account (made by `tcai users create`, or an invitation
already accepted) cannot be invited: the link sets the account's password, and must never
become a way to take over an account someone else is using.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from tcai.access.users import (
    account_email,
    check_password,
    check_role,
    end_sessions,
    hash_password,
    withdraw_invites,
    workspace_by_slug,
)
from tcai.audit import record_audit
from tcai.db.engine import session_scope
from tcai.db.models import GLOBAL_ROLES, Membership, User, UserInvite, Workspace
from tcai.db.types import utcnow
from tcai.errors import Conflict, TcaiError, UsageError

DEFAULT_TTL = timedelta(hours=72)
MIN_TTL = timedelta(minutes=5)
MAX_TTL = timedelta(days=7)
INVITE_PATH = "/portal/invite/"
MAX_TOKEN_LENGTH = 200


class InvalidInvite(TcaiError):
    """An unknown, used, expired or withdrawn invitation: one answer for all."""

    exit_code = 1
    http_status = 404
    code = "invite_invalid"

    def __init__(self) -> None:
        super().__init__(
            "This invitation link is not valid any more (it may have expired or been "
            "used already); ask for a new one."
        )


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def invite_url(base: str, token: str) -> str:
    return f"{base.rstrip('/')}{INVITE_PATH}{token}"


def _check_ttl(ttl: timedelta) -> None:
    if ttl < MIN_TTL:
        raise UsageError("--ttl: at least 5m; an invitation needs time to be read")
    if ttl > MAX_TTL:
        raise UsageError("--ttl: at most 7d; send a new invitation later instead")


def _reinvitable(session: Session, user: User, workspace_id: int) -> bool:
    """May `user` be invited (again) to the workspace? Only an account that was made by
    an invitation never accepted, and that belongs to no other workspace."""
    if user.global_role != GLOBAL_ROLES[0] or user.last_login_at is not None:
        return False
    invites = list(session.exec(select(UserInvite).where(UserInvite.user_id == user.id)))
    if not invites or any(i.accepted_at is not None for i in invites):
        return False
    elsewhere = session.exec(
        select(Membership.id).where(
            Membership.user_id == user.id, Membership.workspace_id != workspace_id
        )
    ).first()
    return elsewhere is None


def create_invite(
    engine: Engine,
    email: str,
    workspace: str,
    role: str,
    ttl: timedelta = DEFAULT_TTL,
    actor: str = "cli",
    *,
    now: datetime | None = None,
) -> tuple[str, datetime]:
    """Invite `email` to `workspace` as `role`: the account (disabled until the link is
    used), its membership and a one-time token. Returns the token (for the link; it is
    not stored) and when it expires."""
    address = account_email(email)
    check_role(role)
    _check_ttl(ttl)
    at = now or utcnow()
    expires = at + ttl
    token = secrets.token_urlsafe(32)
    unusable = hash_password(secrets.token_urlsafe(32))  # a real hash nobody knows
    with session_scope(engine) as session:
        ws = workspace_by_slug(session, workspace)
        assert ws.id is not None
        user = session.exec(select(User).where(User.email == address)).first()
        again = user is not None
        if user is None:
            user = User(
                email=address,
                password_hash=unusable,
                disabled=True,
                must_change_password=True,
            )
            session.add(user)
            session.flush()
        elif not _reinvitable(session, user, ws.id):
            raise Conflict(
                f"'{address}' already has an account; an invitation cannot be sent to it "
                "(add them with a new address, or ask a super admin)"
            )
        assert user.id is not None
        withdrawn = withdraw_invites(session, user.id, now=at) if again else 0
        membership = session.exec(
            select(Membership).where(
                Membership.user_id == user.id, Membership.workspace_id == ws.id
            )
        ).first()
        if membership is None:
            session.add(Membership(workspace_id=ws.id, user_id=user.id, role=role))
        else:
            membership.role = role
            session.add(membership)
        session.add(
            UserInvite(
                token_hash=token_hash(token),
                user_id=user.id,
                workspace_id=ws.id,
                role=role,
                invited_by=actor[:254],
                created_at=at,
                expires_at=expires,
            )
        )
        record_audit(
            session,
            actor=actor,
            action="user.invite",
            target=address,
            workspace_id=ws.id,
            after={
                "workspace": ws.slug,
                "role": role,
                "expires_at": expires.isoformat(),
                "earlier_links_withdrawn": withdrawn,
            },
        )
    return token, expires


def _pending(session: Session, token: str, at: datetime) -> tuple[UserInvite, User, Workspace]:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidInvite()
    found = session.exec(
        select(UserInvite, User, Workspace)
        .join(User, col(User.id) == col(UserInvite.user_id))
        .join(Workspace, col(Workspace.id) == col(UserInvite.workspace_id))
        .where(col(UserInvite.token_hash) == token_hash(token))
    ).first()
    if found is None:
        raise InvalidInvite()
    invite, user, ws = found
    if invite.accepted_at is not None or invite.revoked_at is not None or invite.expires_at <= at:
        raise InvalidInvite()
    return invite, user, ws


def describe_invite(engine: Engine, token: str, *, now: datetime | None = None) -> dict[str, Any]:
    """What a pending invitation is for (the acceptance page shows it); `InvalidInvite`
    otherwise. Spends nothing."""
    with session_scope(engine) as session:
        invite, user, ws = _pending(session, token, now or utcnow())
        return {
            "email": user.email,
            "client_id": ws.slug,
            "workspace_name": ws.name,
            "role": invite.role,
            "expires_at": invite.expires_at.isoformat(),
        }


def accept_invite(engine: Engine, token: str, password: str, *, now: datetime | None = None) -> str:
    """Spend the invitation: set the account's password (the password policy applies; a
    refused password leaves the link usable), enable it, and return its e-mail. Raises
    `InvalidInvite` for an unknown, used, expired or withdrawn token."""
    at = now or utcnow()
    with session_scope(engine) as session:
        invite, user, ws = _pending(session, token, at)
        invite_id, user_id, email, workspace_id = invite.id, user.id, user.email, ws.id
    check_password(password, email)
    password_hash = hash_password(password)  # outside the transaction: ~0.1 s of CPU
    with session_scope(engine) as session:
        # Spent here, atomically: of two uses at once, exactly one finds it unspent.
        spent = session.execute(
            sa.update(UserInvite)
            .where(
                col(UserInvite.id) == invite_id,
                col(UserInvite.accepted_at).is_(None),
                col(UserInvite.revoked_at).is_(None),
                col(UserInvite.expires_at) > at,
            )
            .values(accepted_at=at)
        )
        if not getattr(spent, "rowcount", 0):
            raise InvalidInvite()
        account = session.get(User, user_id)
        if account is None:
            raise InvalidInvite()
        account.password_hash = password_hash
        account.disabled = False
        account.must_change_password = False
        account.updated_at = at
        session.add(account)
        end_sessions(session, user_id or 0)
        withdraw_invites(session, user_id or 0, now=at)  # any other link for the account
        record_audit(
            session,
            actor=email,
            action="user.invite_accept",
            target=email,
            workspace_id=workspace_id,
        )
        return email
