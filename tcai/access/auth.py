"""Logging in and staying logged in: the portal's passwords, lockouts and sessions.

Everything lives in the database, so every daemon process and host agrees and a restart
forgets nothing (docs/architecture.md, "access"):

- **One answer for every failure.** An unknown account, a wrong password, a disabled
  account, a locked account and a throttled address all get `LoginFailed` with the same
  message, after the same work: a password hash is verified every time (against a dummy
  hash when there is no account), so timing does not tell them apart either.
- **Lockout per account** (`lockout` table, keyed by the lower-cased e-mail whether or not
  the account exists): `LOGIN_MAX_ATTEMPTS` failures lock it for `LOGIN_LOCKOUT_MINUTES`.
  The counter is one atomic upsert, so failures from several processes add up exactly.
  `tcai users unlock` ends a lockout.
- **Throttle per address**: more than `IP_MAX_FAILURES` failures from one address within
  `IP_WINDOW` refuse further attempts from it (read from `login_attempt`).
- **Sessions**: an opaque random id in the cookie, only its SHA-256 stored; a new one at
  every login; ended by logout, by a password change and by `tcai secrets rotate`; idle
  after `SESSION_IDLE_TIMEOUT_MINUTES`, and over after `SESSION_MAX_AGE` whatever happens.
  Each session carries its CSRF token.

Password hashing (argon2id) is `tcai.access.users`'s; this module decides who gets in.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from tcai.access.users import hasher, verify_password
from tcai.audit import record_audit
from tcai.config import Settings
from tcai.db.engine import session_scope, upsert_insert
from tcai.db.models import Lockout, LoginAttempt, User, UserSession
from tcai.db.types import utcnow
from tcai.errors import TcaiError
from tcai.text.contacts import normalise_email

SESSION_MAX_AGE = timedelta(hours=12)
LAST_SEEN_EVERY = timedelta(seconds=60)
"""A session's last-seen time is written at most this often (reads stay cheap)."""
IP_MAX_FAILURES = 20
IP_WINDOW = timedelta(minutes=15)
COOKIE = "tcai_session"
FAILURE = (
    "That e-mail and password did not work, or the account is locked for a while. "
    "Check them, or try again in a few minutes."
)


class LoginFailed(TcaiError):
    exit_code = 1
    http_status = 401
    code = "login_failed"

    def __init__(self) -> None:
        super().__init__(FAILURE)


@dataclass(frozen=True)
class NewSession:
    token: str
    """The cookie's value; shown once, stored only as its hash."""
    csrf_token: str
    expires_at: datetime
    user_id: int


@dataclass(frozen=True)
class Authenticated:
    session_id: int
    user_id: int
    email: str
    global_role: str
    csrf_token: str


def cookie_name(settings: Settings) -> str:
    """`__Host-` in production: the browser then insists on Secure, Path=/ and no Domain."""
    return f"__Host-{COOKIE}" if settings.tcai_env == "production" else COOKIE


def cookie_secure(settings: Settings) -> bool:
    return settings.tcai_env == "production"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@cache
def _dummy_hash() -> str:
    """A real argon2id hash of nothing anyone knows, verified when there is no account."""
    return hasher().hash(secrets.token_urlsafe(24))


def _insert(session: Session) -> Any:
    return upsert_insert(session.get_bind().dialect.name)


@dataclass(frozen=True)
class _Candidate:
    user_id: int | None
    password_hash: str
    usable: bool
    """The account exists, is enabled, and neither it nor the address is locked out."""


def _candidate(session: Session, email: str, ip: str | None, now: datetime) -> _Candidate:
    user = session.exec(select(User).where(User.email == email)).first()
    lockout = session.exec(select(Lockout).where(Lockout.email == email)).first()
    locked = bool(lockout and lockout.locked_until and lockout.locked_until > now)
    throttled = False
    if ip:
        failures = session.execute(
            sa.select(sa.func.count())
            .select_from(LoginAttempt)
            .where(
                col(LoginAttempt.ip) == ip,
                col(LoginAttempt.success).is_(False),
                col(LoginAttempt.at) > now - IP_WINDOW,
            )
        ).scalar_one()
        throttled = int(failures) >= IP_MAX_FAILURES
    if user is None:
        return _Candidate(None, _dummy_hash(), False)
    usable = not (user.disabled or locked or throttled)
    return _Candidate(user.id, user.password_hash, usable)


def _count_failure(session: Session, email: str, settings: Settings, now: datetime) -> None:
    """One atomic step of the account's failure counter; locks it at the limit. A lockout
    that has run out starts the count again."""
    table = Lockout.__table__  # type: ignore[attr-defined]
    expired = sa.and_(table.c.locked_until.is_not(None), table.c.locked_until <= now)
    upsert = (
        _insert(session)(table)
        .values(email=email, failed_count=1, locked_until=None, updated_at=now)
        .on_conflict_do_update(
            index_elements=["email"],
            set_={
                "failed_count": sa.case((expired, 1), else_=table.c.failed_count + 1),
                "locked_until": sa.case((expired, None), else_=table.c.locked_until),
                "updated_at": now,
            },
        )
        .returning(table.c.failed_count)
    )
    count = int(session.execute(upsert).scalar_one())
    if count >= settings.login_max_attempts:
        until = now + timedelta(minutes=settings.login_lockout_minutes)
        session.execute(
            sa.update(table)
            .where(
                table.c.email == email,
                sa.or_(table.c.locked_until.is_(None), table.c.locked_until <= now),
            )
            .values(locked_until=until, updated_at=now)
        )


def login(
    engine: Engine,
    settings: Settings,
    email: str,
    password: str,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
    now: datetime | None = None,
) -> NewSession:
    """Check the credentials and open a session, or raise `LoginFailed` (always the same).

    Blocking: a password hash is verified (about 0.1 s of CPU); call it from a thread.
    No database connection is held while the hash is checked."""
    at = now or utcnow()
    address = normalise_email(email or "") or (email or "").strip().lower()[:254] or "-"
    ip = (ip or "")[:64] or None
    with session_scope(engine) as session:
        candidate = _candidate(session, address, ip, at)
    matched = verify_password(candidate.password_hash, password or "")
    accepted = matched and candidate.usable and candidate.user_id is not None
    with session_scope(engine) as session:
        session.add(LoginAttempt(email=address, ip=ip, success=accepted, at=at))
        if not accepted:
            _count_failure(session, address, settings, at)
            record_audit(session, actor="portal", action="user.login_failed", target=address, ip=ip)
    if not accepted or candidate.user_id is None:
        raise LoginFailed()
    with session_scope(engine) as session:
        session.execute(
            sa.update(Lockout)
            .where(col(Lockout.email) == address)
            .values(failed_count=0, locked_until=None, updated_at=at)
        )
        user = session.get(User, candidate.user_id)
        assert user is not None
        user.last_login_at = at
        session.add(user)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = at + SESSION_MAX_AGE
        session.add(
            UserSession(
                token_hash=token_hash(token),
                user_id=candidate.user_id,
                csrf_token=csrf,
                created_at=at,
                last_seen_at=at,
                expires_at=expires,
                ip=ip,
                user_agent=(user_agent or "")[:300] or None,
            )
        )
        record_audit(session, actor=user.email, action="user.login", target=user.email, ip=ip)
        return NewSession(token, csrf, expires, candidate.user_id)


def authenticate(
    engine: Engine, settings: Settings, token: str | None, *, now: datetime | None = None
) -> Authenticated | None:
    """The live session behind a cookie value, or None (unknown, ended, idle too long,
    past its maximum age, or its user disabled). Touches last-seen at most once a minute."""
    if not token or len(token) > 200:
        return None
    at = now or utcnow()
    idle = timedelta(minutes=settings.session_idle_timeout_minutes)
    with session_scope(engine) as session:
        found = session.exec(
            select(UserSession, User)
            .join(User, col(User.id) == col(UserSession.user_id))
            .where(col(UserSession.token_hash) == token_hash(token))
        ).first()
        if found is None:
            return None
        row, user = found
        if row.revoked_at is not None or user.disabled:
            return None
        if at >= row.expires_at or at - row.last_seen_at >= idle:
            row.revoked_at = at
            session.add(row)
            return None
        if at - row.last_seen_at >= LAST_SEEN_EVERY:
            row.last_seen_at = at
            session.add(row)
        assert row.id is not None and user.id is not None
        return Authenticated(row.id, user.id, user.email, user.global_role, row.csrf_token)


def logout(engine: Engine, token: str | None, *, now: datetime | None = None) -> bool:
    """End the session behind `token` on the server; True when there was a live one."""
    if not token:
        return False
    with session_scope(engine) as session:
        result = session.execute(
            sa.update(UserSession)
            .where(
                col(UserSession.token_hash) == token_hash(token),
                col(UserSession.revoked_at).is_(None),
            )
            .values(revoked_at=now or utcnow())
        )
        return bool(getattr(result, "rowcount", 0))
