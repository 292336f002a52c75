"""The one registry of tables that hold a workspace's data (docs/data-model.md).

Privacy (export, erase), retention (purge) and deleting a workspace all read this list,
so a new table that holds a workspace's or a visitor's data is added once, here, and
every one of them learns of it. Order matters: children before the rows they point at,
which is the order deleting a workspace follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from tcai.db import models as m

Owner = Literal["workspace", "conversation", "outbox", "person"]
Clock = Literal["conversations", "leads", "logs"]


@dataclass(frozen=True)
class OwnedTable:
    name: str
    model: type[SQLModel]
    owner: Owner
    """How a row belongs to a workspace: its own workspace_id, through its conversation
    or its outbox row, or to a person rather than a workspace (login attempts)."""
    personal: bool
    """May hold a visitor's or a user's personal data (privacy export and erase)."""
    clock: Clock | None
    """Which retention period purges it (None: lives as long as the workspace)."""


WORKSPACE_TABLES: tuple[OwnedTable, ...] = (
    OwnedTable("outbox_attempt", m.OutboxAttempt, "outbox", True, "logs"),
    OwnedTable("outbox", m.Outbox, "workspace", True, "logs"),
    OwnedTable("booking_event", m.BookingEvent, "workspace", True, "conversations"),
    OwnedTable("appointment_request", m.AppointmentRequest, "workspace", True, "conversations"),
    OwnedTable("message", m.Message, "conversation", True, "conversations"),
    OwnedTable("lead", m.Lead, "workspace", True, "leads"),
    OwnedTable("conversation", m.Conversation, "workspace", True, "conversations"),
    OwnedTable("usage", m.Usage, "workspace", False, None),
    OwnedTable("audit_log", m.AuditLog, "workspace", True, "logs"),
    OwnedTable("system_log", m.SystemLog, "workspace", True, "logs"),
    OwnedTable("login_attempt", m.LoginAttempt, "person", True, "logs"),
    OwnedTable("user_invite", m.UserInvite, "workspace", False, None),
    OwnedTable("membership", m.Membership, "workspace", False, None),
    # The bot's own answers to scripted questions: no visitor's data, kept per bot by
    # `tcai.quality.canary` (its latest runs), not by a retention clock.
    OwnedTable("canary_run", m.CanaryRun, "workspace", False, None),
    OwnedTable("bot", m.Bot, "workspace", False, None),
)


def table_names(*, personal: bool | None = None, purged: bool | None = None) -> tuple[str, ...]:
    """Names of the registered tables, filtered: `personal=True` those that may hold
    personal data, `purged=True` those a retention period purges."""
    return tuple(
        t.name
        for t in WORKSPACE_TABLES
        if (personal is None or t.personal == personal)
        and (purged is None or (t.clock is not None) == purged)
    )


def delete_workspace(session: Session, workspace_id: int) -> None:
    """Remove a workspace and every row the registry says belongs to it."""
    conversations = select(m.Conversation.id).where(m.Conversation.workspace_id == workspace_id)
    outbox_rows = select(m.Outbox.id).where(m.Outbox.workspace_id == workspace_id)
    # A conversation and its lead point at each other: cut that link first.
    session.execute(
        sa.update(m.Conversation)
        .where(col(m.Conversation.workspace_id) == workspace_id)
        .values(lead_id=None)
    )
    for table in WORKSPACE_TABLES:
        columns = table.model.__table__.c  # type: ignore[attr-defined]
        if table.owner == "workspace":
            where = columns.workspace_id == workspace_id
        elif table.owner == "conversation":
            where = columns.conversation_id.in_(conversations)
        elif table.owner == "outbox":
            where = columns.outbox_id.in_(outbox_rows)
        else:
            continue  # a person's rows outlive any one workspace
        session.execute(sa.delete(table.model.__table__).where(where))  # type: ignore[attr-defined]
    session.execute(sa.delete(m.Workspace).where(col(m.Workspace.id) == workspace_id))
