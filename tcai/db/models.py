"""Every table of docs/data-model.md, declared once.

The schema reaches a database only through the Alembic migrations in
`tcai/db/migrations`; a test upgrades a blank database and compares it with these
models. Allowed values of status-like columns are tuples here and check constraints in
the database, so both the code and the data agree on them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from tcai.db.types import UTCDateTime, utcnow

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

WORKSPACE_PLANS = ("free", "starter", "pro", "enterprise")
WORKSPACE_STATUSES = ("active", "paused", "suspended", "cancelled", "demo")
MEMBERSHIP_ROLES = ("owner", "manager", "staff", "agent", "viewer")
GLOBAL_ROLES = ("none", "super_admin")
BOT_STATUSES = ("active", "paused", "draft")
MESSAGE_ROLES = ("user", "assistant")
MESSAGE_SOURCES = ("llm", "faq", "failsafe", "crisis", "automation", "paused", "limit", "visitor")
LEAD_STATUSES = ("new", "contacted", "qualified", "converted", "lost")
LEAD_PRIORITIES = ("low", "normal", "high", "urgent")
BOOKING_STATUSES = ("none", "redirected", "requested")
BOOKING_HANDLINGS = ("external", "internal")
APPOINTMENT_STATUSES = ("new", "contacted", "scheduled", "completed", "cancelled")
OUTBOX_CHANNELS = ("webhook", "email")
OUTBOX_STATUSES = ("pending", "delivered", "dead")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
CANARY_STATUSES = ("pass", "fail", "paused")
CANARY_TRIGGERS = ("manual", "schedule", "config")


def _in(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    quoted = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({quoted})", name=name)


def _json(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=sa.Column(sa.JSON(), nullable=nullable))


def _created() -> Any:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


def _when(index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=True, index=index)


class Workspace(SQLModel, table=True):
    __tablename__ = "workspace"
    __table_args__ = (
        _in("plan", WORKSPACE_PLANS, "plan"),
        _in("status", WORKSPACE_STATUSES, "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=63, unique=True)
    name: str = Field(max_length=200)
    plan: str = Field(default="free", max_length=20)
    status: str = Field(default="active", max_length=20)
    timezone: str = Field(default="America/New_York", max_length=64)
    contact_phone: str | None = Field(default=None, max_length=32)
    contact_email: str | None = Field(default=None, max_length=254)
    retention_conversation_days: int = Field(default=365)
    retention_lead_days: int = Field(default=730)
    retention_log_days: int = Field(default=90)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class User(SQLModel, table=True):
    __tablename__ = "app_user"
    __table_args__ = (_in("global_role", GLOBAL_ROLES, "global_role"),)

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    password_hash: str = Field(max_length=512)
    global_role: str = Field(default="none", max_length=20)
    disabled: bool = Field(default=False)
    must_change_password: bool = Field(default=False)
    last_login_at: datetime | None = _when()
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Membership(SQLModel, table=True):
    __tablename__ = "membership"
    __table_args__ = (
        sa.UniqueConstraint("workspace_id", "user_id"),
        _in("role", MEMBERSHIP_ROLES, "role"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE", index=True)
    user_id: int = Field(foreign_key="app_user.id", ondelete="CASCADE", index=True)
    role: str = Field(max_length=20)
    created_at: datetime = _created()


class BotTemplate(SQLModel, table=True):
    __tablename__ = "bot_template"

    id: int | None = Field(default=None, primary_key=True)
    template_id: str = Field(max_length=64, unique=True)
    key: str = Field(max_length=64)
    name: str = Field(max_length=200)
    version: str = Field(max_length=32)
    content_hash: str = Field(max_length=64)
    document: dict[str, Any] = _json()
    is_active: bool = Field(default=True)
    display_order: int = Field(default=0)
    seeded_at: datetime = _created()
    created_at: datetime = _created()


class Bot(SQLModel, table=True):
    __tablename__ = "bot"
    __table_args__ = (_in("status", BOT_STATUSES, "status"),)

    id: int | None = Field(default=None, primary_key=True)
    bot_id: str = Field(max_length=80, unique=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE", index=True)
    template_id: str = Field(max_length=64)
    name: str = Field(max_length=200)
    status: str = Field(default="active", max_length=20)
    config: dict[str, Any] = _json()
    config_version: int = Field(default=1)
    allowed_origins: list[str] = _json()
    paused_reason: str | None = Field(default=None, max_length=500)
    paused_by: str | None = Field(default=None, max_length=254)
    paused_at: datetime | None = _when()
    created_at: datetime = _created()
    updated_at: datetime = _created()


class Conversation(SQLModel, table=True):
    __tablename__ = "conversation"
    __table_args__ = (sa.UniqueConstraint("bot_id", "session_id"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE", index=True)
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE")
    session_id: str = Field(max_length=64)
    visitor_hash: str | None = Field(default=None, max_length=64)
    lead_id: int | None = Field(default=None, foreign_key="lead.id", ondelete="SET NULL")
    started_at: datetime = _created()
    last_activity_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    flag_crisis: bool = Field(default=False)
    flag_needs_review: bool = Field(default=False)
    message_count: int = Field(default=0)


class Message(SQLModel, table=True):
    __tablename__ = "message"
    __table_args__ = (
        _in("role", MESSAGE_ROLES, "role"),
        _in("source", MESSAGE_SOURCES, "source"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", ondelete="CASCADE", index=True)
    role: str = Field(max_length=16)
    text: str = Field(sa_type=sa.Text)
    source: str = Field(max_length=16)
    latency_ms: int | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class Lead(SQLModel, table=True):
    __tablename__ = "lead"
    __table_args__ = (
        _in("status", LEAD_STATUSES, "status"),
        _in("priority", LEAD_PRIORITIES, "priority"),
        _in("booking_status", BOOKING_STATUSES, "booking_status"),
        # One lead per person per workspace: concurrent writers meet here, not in code.
        sa.Index(
            "uq_lead_workspace_id_phone",
            "workspace_id",
            "phone",
            unique=True,
            sqlite_where=sa.text("phone IS NOT NULL"),
            postgresql_where=sa.text("phone IS NOT NULL"),
        ),
        sa.Index(
            "uq_lead_workspace_id_email",
            "workspace_id",
            "email",
            unique=True,
            sqlite_where=sa.text("email IS NOT NULL"),
            postgresql_where=sa.text("email IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE", index=True)
    bot_id: int | None = Field(default=None, foreign_key="bot.id", ondelete="SET NULL")
    conversation_id: int | None = Field(default=None, index=True)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    consent_text: str | None = Field(default=None, sa_type=sa.Text)
    consent_at: datetime | None = _when()
    status: str = Field(default="new", max_length=20)
    priority: str = Field(default="normal", max_length=20)
    source: str = Field(default="chat", max_length=40)
    service_requested: str | None = Field(default=None, max_length=200)
    booking_status: str = Field(default="none", max_length=20)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    updated_at: datetime = _created()


class BookingEvent(SQLModel, table=True):
    __tablename__ = "booking_event"
    __table_args__ = (_in("handling", BOOKING_HANDLINGS, "handling"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE", index=True)
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE")
    conversation_id: int | None = Field(
        default=None, foreign_key="conversation.id", ondelete="SET NULL"
    )
    lead_id: int | None = Field(default=None, foreign_key="lead.id", ondelete="SET NULL")
    handling: str = Field(max_length=16)
    provider: str | None = Field(default=None, max_length=80)
    url: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class AppointmentRequest(SQLModel, table=True):
    __tablename__ = "appointment_request"
    __table_args__ = (_in("status", APPOINTMENT_STATUSES, "status"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE", index=True)
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE")
    conversation_id: int | None = Field(
        default=None, foreign_key="conversation.id", ondelete="SET NULL"
    )
    lead_id: int | None = Field(default=None, foreign_key="lead.id", ondelete="SET NULL")
    appointment_type: str = Field(max_length=64)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    preferred_time: str | None = Field(default=None, max_length=200)
    details: dict[str, Any] = _json()
    status: str = Field(default="new", max_length=20)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    updated_at: datetime = _created()


class Usage(SQLModel, table=True):
    __tablename__ = "usage"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "month"),)

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE")
    month: str = Field(max_length=7)  # YYYY-MM, UTC
    messages: int = Field(default=0)
    leads: int = Field(default=0)


class AuditLog(SQLModel, table=True):
    """Append-only: nothing in tcai updates or deletes a row except retention."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    actor: str = Field(max_length=254)
    action: str = Field(max_length=80, index=True)
    target: str | None = Field(default=None, max_length=200)
    workspace_id: int | None = Field(default=None, index=True)
    before: dict[str, Any] | None = _json(nullable=True)
    after: dict[str, Any] | None = _json(nullable=True)
    reason: str | None = Field(default=None, max_length=500)
    request_id: str | None = Field(default=None, max_length=64)
    ip: str | None = Field(default=None, max_length=64)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class SystemLog(SQLModel, table=True):
    __tablename__ = "system_log"
    __table_args__ = (_in("level", LOG_LEVELS, "level"),)

    id: int | None = Field(default=None, primary_key=True)
    level: str = Field(max_length=16)
    source: str = Field(max_length=80)
    message: str = Field(sa_type=sa.Text)
    details: dict[str, Any] | None = _json(nullable=True)
    workspace_id: int | None = Field(default=None, index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class Outbox(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (
        _in("channel", OUTBOX_CHANNELS, "channel"),
        _in("status", OUTBOX_STATUSES, "status"),
        sa.Index("ix_outbox_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=64, unique=True)
    workspace_id: int | None = Field(
        default=None, foreign_key="workspace.id", ondelete="CASCADE", index=True
    )
    bot_id: int | None = Field(default=None, foreign_key="bot.id", ondelete="SET NULL")
    event_type: str = Field(max_length=64)
    channel: str = Field(default="webhook", max_length=16)
    target: str = Field(max_length=2000)
    payload: dict[str, Any] = _json()
    status: str = Field(default="pending", max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = _created()
    delivered_at: datetime | None = _when()
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = _created()


class OutboxAttempt(SQLModel, table=True):
    """The delivery log: one row per attempt of an outbox item."""

    __tablename__ = "outbox_attempt"

    id: int | None = Field(default=None, primary_key=True)
    outbox_id: int = Field(foreign_key="outbox.id", ondelete="CASCADE", index=True)
    attempted_at: datetime = _created()
    status_code: int | None = Field(default=None)
    error: str | None = Field(default=None, sa_type=sa.Text)
    duration_ms: int | None = Field(default=None)


class LoginAttempt(SQLModel, table=True):
    __tablename__ = "login_attempt"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, index=True)
    ip: str | None = Field(default=None, max_length=64)
    success: bool = Field(default=False)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class Lockout(SQLModel, table=True):
    """Failure counters per account e-mail (known or not, so lockout reveals nothing)."""

    __tablename__ = "lockout"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    failed_count: int = Field(default=0)
    locked_until: datetime | None = _when()
    updated_at: datetime = _created()


class UserSession(SQLModel, table=True):
    __tablename__ = "user_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="app_user.id", ondelete="CASCADE", index=True)
    csrf_token: str = Field(max_length=128)
    created_at: datetime = _created()
    last_seen_at: datetime = _created()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    revoked_at: datetime | None = _when()
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=300)


class CacheSignal(SQLModel, table=True):
    """Version counters the daemons compare to know their caches are stale (SQLite's
    substitute for LISTEN/NOTIFY, and the TTL backstop on PostgreSQL)."""

    __tablename__ = "cache_signal"

    name: str = Field(max_length=80, primary_key=True)
    version: int = Field(default=0)
    updated_at: datetime = _created()


class UserInvite(SQLModel, table=True):
    """A one-time link that lets an invited user choose a password (`tcai users invite`).
    Only the link token's SHA-256 is stored; the user stays disabled until it is used."""

    __tablename__ = "user_invite"
    __table_args__ = (_in("role", MEMBERSHIP_ROLES, "role"),)

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="app_user.id", ondelete="CASCADE", index=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE", index=True)
    role: str = Field(max_length=20)
    invited_by: str = Field(max_length=254)
    created_at: datetime = _created()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    accepted_at: datetime | None = _when()
    revoked_at: datetime | None = _when()


class CanaryRun(SQLModel, table=True):
    """One run of a bot's canary conversations (docs/canaries.md): scripted questions
    answered by the real pipeline, which wrote nothing else. `checks` holds each
    question, what its answer had to contain, the reply and what was missing."""

    __tablename__ = "canary_run"
    __table_args__ = (
        _in("status", CANARY_STATUSES, "status"),
        _in("trigger", CANARY_TRIGGERS, "trigger"),
        sa.Index("ix_canary_run_bot_id_id", "bot_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    workspace_id: int = Field(foreign_key="workspace.id", ondelete="CASCADE", index=True)
    bot_id: int = Field(foreign_key="bot.id", ondelete="CASCADE")
    config_version: int = Field(default=1)
    status: str = Field(max_length=16)
    trigger: str = Field(default="manual", max_length=16)
    note: str | None = Field(default=None, max_length=500)
    """Why a run was skipped (the bot paused, the workspace suspended)."""
    total: int = Field(default=0)
    failed: int = Field(default=0)
    checks: list[dict[str, Any]] = _json()
    alert: str | None = Field(default=None, max_length=32)
    """The event this run queued for the agency: canary.failed (a streak began) or
    canary.recovered (it ended); None for every other run."""
    started_at: datetime = _created()
    finished_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
