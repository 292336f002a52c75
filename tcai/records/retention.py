"""Retention: rows older than their workspace's retention days are deleted, in batches.

Owns what "old" means for each kind of data and deleting it across every table that holds
it. Each workspace has its own days (docs/data-model.md; defaults 365, 730, 90):

- conversations (retention_conversation_days, by `last_activity_at`): their messages,
  then the booking events and appointment requests that belong to no lead, then the
  conversations. A conversation of a lead that is kept still goes: the lead keeps its own
  booking events and appointment requests, which merely lose their link to it. Booking
  events and appointment requests with neither a lead nor a conversation follow the
  conversation days by `created_at`.
- leads (retention_lead_days, by `updated_at`): their booking events and appointment
  requests, then the leads; younger conversations that pointed at them are kept unlinked.
- logs (retention_log_days): the workspace's system_log and audit_log rows by `at`, its
  delivered and dead outbox rows (by `delivered_at`, else `created_at`) with their delivery
  log. Pending deliveries are never purged.
- rows that belong to no workspace (audit and system log rows without one, outbox rows
  without one, login attempts) follow the default log days.

References are cleared before a row goes (`conversation.lead_id`, `booking_event.lead_id`,
`lead.conversation_id`, ...) so foreign keys never block. Every step selects at most
`batch_size` ids, deletes exactly those and commits, so a huge purge never holds one giant
transaction and a concurrent chat turn waits for one batch at most. A dry run counts the
same rows and writes nothing. Retention days of zero or less mean "keep forever". With
DEMO_SAFE_MODE on, demo workspaces are skipped and the report says so. A real run writes
one `retention.purge` audit entry with the counts.

`purge_daily` is the daemon's loop around `purge`; the daemon owns starting and stopping it.

Deliberately not here: one person's erasure (`tcai.records.privacy`), operator sessions and
lockouts (the authentication code expires those), and usage counters (kept for billing).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from tcai.audit import record_audit
from tcai.db.engine import session_scope
from tcai.db.models import (
    AppointmentRequest,
    AuditLog,
    BookingEvent,
    Conversation,
    Lead,
    LoginAttempt,
    Message,
    Outbox,
    OutboxAttempt,
    SystemLog,
    Workspace,
)
from tcai.db.types import utcnow
from tcai.logs import log_event
from tcai.records.safe_mode import is_protected
from tcai.records.tables import table_names

DEFAULT_BATCH_SIZE = 500
# Rows of no workspace follow the default a new workspace gets (docs/data-model.md: logs 90 days).
DEFAULT_LOG_DAYS: int = Workspace.model_fields["retention_log_days"].default
TABLES = table_names(purged=True)
FINISHED_OUTBOX = ("delivered", "dead")
FIRST_RUN_DELAY_S = 60.0
RUN_INTERVAL_S = 24 * 3600.0

Criteria = list[ColumnElement[bool]]
BeforeDelete = Callable[[Session, list[int]], None]


@dataclass
class WorkspacePurge:
    """What one workspace lost (or would lose, in a dry run)."""

    slug: str
    status: str
    days: dict[str, int]
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "client_id": self.slug,
            "status": self.status,
            "days": dict(self.days),
            "counts": dict(self.counts),
            "total": sum(self.counts.values()),
            "skipped": self.skipped,
        }


@dataclass
class PurgeReport:
    dry_run: bool
    now: datetime
    batch_size: int
    workspaces: list[WorkspacePurge] = field(default_factory=list)
    unassigned: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    batches: int = 0

    def totals(self) -> dict[str, int]:
        totals = dict(self.unassigned)
        for item in self.workspaces:
            for table, count in item.counts.items():
                totals[table] += count
        return totals

    @property
    def total(self) -> int:
        return sum(self.totals().values())

    @property
    def skipped(self) -> list[str]:
        return [item.slug for item in self.workspaces if item.skipped]

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "now": self.now.isoformat(),
            "batch_size": self.batch_size,
            "batches": self.batches,
            "counts": self.totals(),
            "total": self.total,
            "workspaces": [item.as_dict() for item in self.workspaces],
            "unassigned": {
                "days": {"log": DEFAULT_LOG_DAYS},
                "counts": dict(self.unassigned),
            },
            "skipped": self.skipped,
        }


class _Purger:
    def __init__(self, engine: Engine, *, dry_run: bool, batch_size: int) -> None:
        self.engine = engine
        self.dry_run = dry_run
        self.batch_size = batch_size
        self.batches = 0

    def drain(self, model: Any, criteria: Criteria, before: BeforeDelete | None = None) -> int:
        """Delete the rows matching `criteria`, `batch_size` ids per transaction."""
        id_column = col(model.id)
        if self.dry_run:
            with session_scope(self.engine) as session:
                query = sa.select(sa.func.count()).select_from(model).where(*criteria)
                return int(session.execute(query).scalar_one())
        total = 0
        while True:
            with session_scope(self.engine) as session:
                ids = list(
                    session.execute(
                        sa.select(id_column)
                        .where(*criteria)
                        .order_by(id_column)
                        .limit(self.batch_size)
                    ).scalars()
                )
                if not ids:
                    return total
                if before is not None:
                    before(session, ids)
                result = session.execute(sa.delete(model).where(id_column.in_(ids)))
                total += int(getattr(result, "rowcount", 0) or 0)
            self.batches += 1

    def conversations(self, workspace_id: int, cutoff: datetime, counts: dict[str, int]) -> None:
        old = sa.select(col(Conversation.id)).where(
            col(Conversation.workspace_id) == workspace_id,
            col(Conversation.last_activity_at) < cutoff,
        )
        counts["message"] += self.drain(Message, [col(Message.conversation_id).in_(old)])
        for model in (BookingEvent, AppointmentRequest):
            counts[model.__tablename__] += self.drain(
                model, [col(model.lead_id).is_(None), col(model.conversation_id).in_(old)]
            )
        counts["conversation"] += self.drain(
            Conversation,
            [
                col(Conversation.workspace_id) == workspace_id,
                col(Conversation.last_activity_at) < cutoff,
            ],
            before=_unlink_conversations,
        )
        for model in (BookingEvent, AppointmentRequest):
            counts[model.__tablename__] += self.drain(
                model,
                [
                    col(model.workspace_id) == workspace_id,
                    col(model.lead_id).is_(None),
                    col(model.conversation_id).is_(None),
                    col(model.created_at) < cutoff,
                ],
            )

    def leads(self, workspace_id: int, cutoff: datetime, counts: dict[str, int]) -> None:
        old = sa.select(col(Lead.id)).where(
            col(Lead.workspace_id) == workspace_id, col(Lead.updated_at) < cutoff
        )
        for model in (BookingEvent, AppointmentRequest):
            counts[model.__tablename__] += self.drain(model, [col(model.lead_id).in_(old)])
        counts["lead"] += self.drain(
            Lead,
            [col(Lead.workspace_id) == workspace_id, col(Lead.updated_at) < cutoff],
            before=_unlink_leads,
        )

    def logs(self, workspace_id: int | None, cutoff: datetime, counts: dict[str, int]) -> None:
        """Log rows of one workspace, or (`workspace_id` None) of no workspace."""
        for model in (SystemLog, AuditLog):
            counts[model.__tablename__] += self.drain(
                model, [_owned(model, workspace_id), col(model.at) < cutoff]
            )
        finished = [
            _owned(Outbox, workspace_id),
            col(Outbox.status).in_(FINISHED_OUTBOX),
            sa.or_(
                sa.and_(col(Outbox.delivered_at).is_not(None), col(Outbox.delivered_at) < cutoff),
                sa.and_(col(Outbox.delivered_at).is_(None), col(Outbox.created_at) < cutoff),
            ),
        ]
        counts["outbox_attempt"] += self.drain(
            OutboxAttempt,
            [col(OutboxAttempt.outbox_id).in_(sa.select(col(Outbox.id)).where(*finished))],
        )
        counts["outbox"] += self.drain(Outbox, finished, before=_drop_attempts)
        if workspace_id is None:
            counts["login_attempt"] += self.drain(LoginAttempt, [col(LoginAttempt.at) < cutoff])


def _owned(model: Any, workspace_id: int | None) -> ColumnElement[bool]:
    column = col(model.workspace_id)
    if workspace_id is not None:
        return column == workspace_id
    # workspace_id is no foreign key on the log tables, so a deleted workspace leaves
    # orphans; outbox rows cascade with their workspace and only meet the IS NULL half.
    return sa.or_(column.is_(None), column.not_in(sa.select(col(Workspace.id))))


def _unlink_conversations(session: Session, ids: list[int]) -> None:
    for model in (BookingEvent, AppointmentRequest):
        session.execute(
            sa.update(model).where(col(model.conversation_id).in_(ids)).values(conversation_id=None)
        )
    session.execute(
        sa.update(Lead).where(col(Lead.conversation_id).in_(ids)).values(conversation_id=None)
    )
    session.execute(sa.delete(Message).where(col(Message.conversation_id).in_(ids)))


def _unlink_leads(session: Session, ids: list[int]) -> None:
    for model in (Conversation, BookingEvent, AppointmentRequest):
        session.execute(sa.update(model).where(col(model.lead_id).in_(ids)).values(lead_id=None))


def _drop_attempts(session: Session, ids: list[int]) -> None:
    session.execute(sa.delete(OutboxAttempt).where(col(OutboxAttempt.outbox_id).in_(ids)))


def purge(
    engine: Engine,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    actor: str = "cli",
    demo_safe_mode: bool = False,
) -> PurgeReport:
    """Delete (or, in a dry run, count) everything past its workspace's retention days."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    now = now or utcnow()
    report = PurgeReport(dry_run=dry_run, now=now, batch_size=batch_size)
    purger = _Purger(engine, dry_run=dry_run, batch_size=batch_size)
    with session_scope(engine) as session:
        workspaces = list(session.exec(select(Workspace).order_by(col(Workspace.id))).all())
    for ws in workspaces:
        assert ws.id is not None
        item = WorkspacePurge(
            slug=ws.slug,
            status=ws.status,
            days={
                "conversation": ws.retention_conversation_days,
                "lead": ws.retention_lead_days,
                "log": ws.retention_log_days,
            },
        )
        report.workspaces.append(item)
        if is_protected(ws.status, demo_safe_mode=demo_safe_mode):
            item.skipped = "demo workspace protected by DEMO_SAFE_MODE"
            continue
        if ws.retention_conversation_days > 0:
            cutoff = now - timedelta(days=ws.retention_conversation_days)
            purger.conversations(ws.id, cutoff, item.counts)
        if ws.retention_lead_days > 0:
            purger.leads(ws.id, now - timedelta(days=ws.retention_lead_days), item.counts)
        if ws.retention_log_days > 0:
            purger.logs(ws.id, now - timedelta(days=ws.retention_log_days), item.counts)
    purger.logs(None, now - timedelta(days=DEFAULT_LOG_DAYS), report.unassigned)
    report.batches = purger.batches
    if not dry_run:
        with session_scope(engine) as session:
            record_audit(
                session,
                actor=actor,
                action="retention.purge",
                after={
                    "counts": report.totals(),
                    "total": report.total,
                    "batches": report.batches,
                    "workspaces": {
                        item.slug: sum(item.counts.values())
                        for item in report.workspaces
                        if not item.skipped
                    },
                    "skipped": report.skipped,
                },
            )
    return report


async def purge_daily(
    engine: Engine,
    *,
    demo_safe_mode: bool = False,
    first_delay: float = FIRST_RUN_DELAY_S,
    interval: float = RUN_INTERVAL_S,
    logger: logging.Logger | None = None,
) -> None:
    """Run `purge` in a thread `first_delay` seconds after start, then every `interval`.

    A failed run is logged (and so reaches system_log) and the next one tries again; only
    cancellation ends the loop."""
    log = logger or logging.getLogger(__name__)
    delay = first_delay
    while True:
        await asyncio.sleep(delay)
        delay = interval
        try:
            report = await asyncio.to_thread(
                purge, engine, actor="daemon", demo_safe_mode=demo_safe_mode
            )
        except Exception as exc:  # a failed run must not end the daily loop
            log.error("retention purge failed: %s; retrying in %.0f s", type(exc).__name__, delay)
            continue
        log_event(
            log,
            "retention purge done",
            total=report.total,
            counts=report.totals(),
            batches=report.batches,
            skipped=report.skipped,
        )
