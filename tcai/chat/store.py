"""The chat engine's database work: one short read before the answer, one write after.

Neither runs while the LLM is thinking (a connection held across an LLM call starves
the pool; docs/chat-pipeline.md): `load_context` reads
everything a turn needs in one transaction, `persist_turn` writes everything the turn
produced in another — messages, conversation counters and flags, the lead (one per
person per workspace, the unique indexes settle races), booking events, appointment
requests, usage counters (atomic upserts) and outbox events (webhook rows and owner
e-mails, both through `tcai.delivery.outbox.enqueue`). When the database refuses a
turn, the engine writes it to the spool (`tcai.chat.spool`) instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from tcai.chat.directory import CachedBot
from tcai.db.models import (
    LEAD_PRIORITIES,
    AppointmentRequest,
    BookingEvent,
    Conversation,
    Lead,
    Message,
    Usage,
)
from tcai.db.types import utcnow
from tcai.delivery.outbox import EventSource, enqueue
from tcai.text.contacts import Contacts

HISTORY_MESSAGES = 10


@dataclass
class KnownLead:
    id: int
    name: str | None
    phone: str | None
    email: str | None


@dataclass
class TurnContext:
    workspace_id: int
    client_id: str
    workspace_status: str
    plan: str
    bot_pk: int
    bot_id: str
    bot_status: str
    config_version: int
    messages_this_month: int
    leads_this_month: int
    conversation_id: int | None = None
    lead: KnownLead | None = None
    open_request_id: int | None = None
    history: list[tuple[str, str]] = field(default_factory=list)
    reserved: bool = False
    """This turn already counts in the month's usage (see `load_context`)."""
    loaded: bool = False
    """The context was read from the database (False: built from the bot alone)."""


def month_key(now: datetime) -> str:
    return now.strftime("%Y-%m")


def context_for(bot: CachedBot) -> TurnContext:
    """A turn's context from the bot alone (no database): what the engine knows when the
    database is down, and the start of every normal turn."""
    return TurnContext(
        workspace_id=bot.workspace_id,
        client_id=bot.client_id,
        workspace_status=bot.workspace_status,
        plan=bot.plan,
        bot_pk=bot.bot_pk,
        bot_id=bot.bot_id,
        bot_status=bot.status,
        config_version=bot.config_version,
        messages_this_month=0,
        leads_this_month=0,
    )


def _reserve_message(
    session: Session, ctx: TurnContext, cap: int | None, leads_cap: int | None, now: datetime
) -> tuple[bool, int, int]:
    """Count this turn against the month's quotas, atomically: one upsert that increments
    the messages only while under `cap` and the leads under `leads_cap` (None =
    unlimited), so concurrent turns at the boundary never overshoot and a refused turn is
    not counted. Returns (reserved, messages, leads)."""
    table = Usage.__table__  # type: ignore[attr-defined]
    month = month_key(now)
    stmt = _insert(session)(table).values(
        workspace_id=ctx.workspace_id, month=month, messages=1, leads=0
    )
    limits = [
        *([table.c.messages < cap] if cap is not None else []),
        *([table.c.leads < leads_cap] if leads_cap is not None else []),
    ]
    upsert = stmt.on_conflict_do_update(
        index_elements=["workspace_id", "month"],
        set_={"messages": table.c.messages + 1},
        where=sa.and_(*limits) if limits else None,
    ).returning(table.c.messages, table.c.leads)
    row = session.execute(upsert).first()
    if row is not None:
        return True, int(row[0]), int(row[1])
    current = session.execute(
        sa.select(table.c.messages, table.c.leads).where(
            table.c.workspace_id == ctx.workspace_id, table.c.month == month
        )
    ).first()
    return False, int(current[0]) if current else 0, int(current[1]) if current else 0


def load_context(
    session: Session,
    bot: CachedBot,
    session_id: str,
    now: datetime,
    *,
    message_cap: int | None = None,
    leads_cap: int | None = None,
    reserve: bool = True,
) -> TurnContext:
    """The per-turn reads: this month's usage (reserving this turn's place in the quota
    when `reserve`), the conversation, its lead and history."""
    ctx = context_for(bot)
    if reserve:
        ctx.reserved, ctx.messages_this_month, ctx.leads_this_month = _reserve_message(
            session, ctx, message_cap, leads_cap, now
        )
    else:
        usage = session.exec(
            select(Usage).where(
                Usage.workspace_id == bot.workspace_id, Usage.month == month_key(now)
            )
        ).first()
        ctx.messages_this_month = usage.messages if usage else 0
        ctx.leads_this_month = usage.leads if usage else 0
    found = session.execute(
        sa.select(
            col(Conversation.id), col(Lead.id), col(Lead.name), col(Lead.phone), col(Lead.email)
        )
        .select_from(Conversation)
        .outerjoin(Lead, col(Lead.id) == col(Conversation.lead_id))
        .where(col(Conversation.bot_id) == bot.bot_pk, col(Conversation.session_id) == session_id)
    ).first()
    ctx.loaded = True
    if found is None:
        return ctx
    conversation_id, lead_id, name, phone, email = found
    ctx.conversation_id = conversation_id
    if lead_id is not None:
        ctx.lead = KnownLead(lead_id, name, phone, email)
    recent = session.exec(
        select(Message.role, Message.text)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.id.desc())  # type: ignore[union-attr]
        .limit(HISTORY_MESSAGES)
    ).all()
    ctx.history = [(r, t) for r, t in reversed(recent)]
    ctx.open_request_id = session.exec(
        select(AppointmentRequest.id).where(
            AppointmentRequest.conversation_id == conversation_id,
            AppointmentRequest.status == "new",
        )
    ).first()
    return ctx


@dataclass
class BookingRecord:
    handling: str
    appointment_type: str
    provider: str | None = None
    url: str | None = None
    service: str | None = None


@dataclass
class TurnRecord:
    session_id: str
    visitor_hash: str | None
    user_text: str
    reply_text: str
    source: str
    latency_ms: int
    contacts: Contacts
    priority: str = "normal"
    crisis: bool = False
    booking: BookingRecord | None = None
    webhook_url: str | None = None
    notify_emails: tuple[str, ...] = ()
    """Owner addresses told of a new lead by e-mail; left empty when SMTP is not set."""
    business_name: str | None = None
    now: datetime = field(default_factory=utcnow)
    counted: bool = True
    """The turn counts as a message in the month's usage (refused turns do not)."""


@dataclass
class PersistResult:
    conversation_id: int
    lead_id: int | None
    lead_created: bool
    lead_changed: bool
    queued: int = 0
    """Outbox rows this turn added (the daemon wakes its delivery worker for them)."""


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _conversation_id(session: Session, ctx: TurnContext, record: TurnRecord) -> int:
    if ctx.conversation_id is not None:
        return ctx.conversation_id
    stmt = _insert(session)(Conversation.__table__).values(  # type: ignore[attr-defined]
        workspace_id=ctx.workspace_id,
        bot_id=ctx.bot_pk,
        session_id=record.session_id,
        visitor_hash=record.visitor_hash,
        started_at=record.now,
        last_activity_at=record.now,
        flag_crisis=False,
        flag_needs_review=False,
        message_count=0,
    )
    # One statement for both cases: the no-op update lets RETURNING give the existing id.
    table = Conversation.__table__  # type: ignore[attr-defined]
    upsert = stmt.on_conflict_do_update(
        index_elements=["bot_id", "session_id"], set_={"bot_id": table.c.bot_id}
    ).returning(table.c.id)
    return int(session.execute(upsert).scalar_one())


def _rank(priority: str) -> int:
    return LEAD_PRIORITIES.index(priority) if priority in LEAD_PRIORITIES else 1


def _find_lead(session: Session, ctx: TurnContext, contacts: Contacts) -> Lead | None:
    if ctx.lead is not None:
        lead = session.get(Lead, ctx.lead.id)
        if lead is not None:
            return lead
    for column, value in ((Lead.phone, contacts.phone), (Lead.email, contacts.email)):
        if value:
            lead = session.exec(
                select(Lead).where(Lead.workspace_id == ctx.workspace_id, column == value)
            ).first()
            if lead is not None:
                return lead
    return None


def _apply(lead: Lead, contacts: Contacts, record: TurnRecord) -> bool:
    changed = False
    for name in ("name", "phone", "email"):
        value = getattr(contacts, name)
        if value and getattr(lead, name) != value:
            setattr(lead, name, value)
            changed = True
    if contacts.consent and not lead.consent_text:
        lead.consent_text, lead.consent_at, changed = contacts.consent, record.now, True
    if _rank(record.priority) > _rank(lead.priority):
        lead.priority, changed = record.priority, True
    if record.booking and record.booking.service and not lead.service_requested:
        lead.service_requested, changed = record.booking.service[:200], True
    if record.booking and record.booking.handling == "internal" and lead.booking_status == "none":
        lead.booking_status, changed = "requested", True
    if changed:
        lead.updated_at = record.now
    return changed


def upsert_lead(
    session: Session, ctx: TurnContext, conversation_id: int | None, record: TurnRecord
) -> tuple[Lead | None, bool, bool]:
    """The one lead per person per workspace: find it by the conversation, phone or
    e-mail and update it, or create it (a concurrent insert of the same person loses to
    the unique index and updates instead). Returns (lead, created, changed)."""
    contacts = record.contacts
    lead = _find_lead(session, ctx, contacts)
    if lead is None and not (contacts.phone or contacts.email):
        return None, False, False  # a name alone is not a lead yet
    if lead is not None:
        changed = _apply(lead, contacts, record)
        session.add(lead)
        return lead, False, changed
    lead = Lead(
        workspace_id=ctx.workspace_id,
        bot_id=ctx.bot_pk,
        conversation_id=conversation_id,
        source="chat",
        created_at=record.now,
        updated_at=record.now,
    )
    _apply(lead, contacts, record)
    try:
        with session.begin_nested():
            session.add(lead)
            session.flush()
    except IntegrityError:
        # Another conversation stored the same phone or e-mail a moment ago: update it.
        existing = _find_lead(session, ctx, contacts)
        if existing is None:
            raise
        changed = _apply(existing, contacts, record)
        session.add(existing)
        return existing, False, changed
    return lead, True, True


def _event(
    session: Session, ctx: TurnContext, record: TurnRecord, event_type: str, data: dict[str, Any]
) -> int:
    """Queue `event_type` for the bot's webhook and, for a new lead, an e-mail per owner
    address (`record.notify_emails` is empty when SMTP is not configured)."""
    source = EventSource(
        ctx.workspace_id, ctx.bot_pk, ctx.client_id, ctx.bot_id, record.business_name
    )
    emails = record.notify_emails if event_type == "lead.created" else ()
    return len(
        enqueue(
            session,
            source,
            event_type,
            data,
            now=record.now,
            webhook_url=record.webhook_url,
            emails=emails,
        )
    )


def _lead_data(lead: Lead) -> dict[str, Any]:
    return {
        "lead_id": lead.id,
        "name": lead.name,
        "phone": lead.phone,
        "email": lead.email,
        "status": lead.status,
        "priority": lead.priority,
        "service_requested": lead.service_requested,
        "booking_status": lead.booking_status,
    }


def persist_turn(session: Session, ctx: TurnContext, record: TurnRecord) -> PersistResult:
    conversation_id = _conversation_id(session, ctx, record)
    session.execute(
        sa.insert(Message.__table__),  # type: ignore[attr-defined]
        [
            {
                "conversation_id": conversation_id,
                "role": "user",
                "text": record.user_text,
                "source": "visitor",
                "latency_ms": None,
                "created_at": record.now,
            },
            {
                "conversation_id": conversation_id,
                "role": "assistant",
                "text": record.reply_text,
                "source": record.source,
                "latency_ms": record.latency_ms,
                "created_at": record.now,
            },
        ],
    )
    lead, created, changed = upsert_lead(session, ctx, conversation_id, record)
    lead_id = lead.id if lead is not None else None

    values: dict[str, Any] = {
        "message_count": Conversation.message_count + 2,
        "last_activity_at": record.now,
    }
    if lead_id is not None:
        values["lead_id"] = lead_id
    if record.crisis:
        values.update(flag_crisis=True, flag_needs_review=True)
    session.execute(
        sa.update(Conversation).where(col(Conversation.id) == conversation_id).values(**values)
    )

    messages = 0 if ctx.reserved or not record.counted else 1
    leads = 1 if created else 0
    if messages or leads:
        stmt = _insert(session)(Usage.__table__).values(  # type: ignore[attr-defined]
            workspace_id=ctx.workspace_id,
            month=month_key(record.now),
            messages=messages,
            leads=leads,
        )
        table = Usage.__table__  # type: ignore[attr-defined]
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["workspace_id", "month"],
                set_={"messages": table.c.messages + messages, "leads": table.c.leads + leads},
            )
        )

    queued = 0
    if record.booking is not None and record.booking.handling == "internal":
        queued += _record_request(session, ctx, conversation_id, lead, record)
    if lead is not None and (created or changed):
        queued += _event(
            session, ctx, record, "lead.created" if created else "lead.updated", _lead_data(lead)
        )
    if record.crisis:
        queued += _event(
            session,
            ctx,
            record,
            "conversation.flagged",
            {"session_id": record.session_id, "reason": "crisis"},
        )
    if ctx.open_request_id and lead is not None and not record.booking:
        _attach_contacts(session, ctx.open_request_id, lead, record.now)
    return PersistResult(conversation_id, lead_id, created, changed, queued)


def _record_request(
    session: Session, ctx: TurnContext, conversation_id: int, lead: Lead | None, record: TurnRecord
) -> int:
    """Open or complete the internal booking request; returns the outbox rows queued."""
    assert record.booking is not None
    queued = 0
    request: AppointmentRequest | None = None
    if ctx.open_request_id:
        request = session.get(AppointmentRequest, ctx.open_request_id)
    if request is None:
        request = AppointmentRequest(
            workspace_id=ctx.workspace_id,
            bot_id=ctx.bot_pk,
            conversation_id=conversation_id,
            appointment_type=record.booking.appointment_type,
            details={"service": record.booking.service} if record.booking.service else {},
            created_at=record.now,
            updated_at=record.now,
        )
        session.add(
            BookingEvent(
                workspace_id=ctx.workspace_id,
                bot_id=ctx.bot_pk,
                conversation_id=conversation_id,
                lead_id=lead.id if lead else None,
                handling="internal",
                provider=None,
                url=None,
                created_at=record.now,
            )
        )
        data: dict[str, Any] = {
            "session_id": record.session_id,
            "appointment_type": record.booking.appointment_type,
            "service": record.booking.service,
        }
        if lead is not None:
            data["lead"] = _lead_data(lead)
        queued = _event(session, ctx, record, "booking.requested", data)
    if lead is not None:
        request.lead_id = lead.id
        request.name, request.phone, request.email = lead.name, lead.phone, lead.email
    request.updated_at = record.now
    session.add(request)
    return queued


def _attach_contacts(session: Session, request_id: int, lead: Lead, now: datetime) -> None:
    request = session.get(AppointmentRequest, request_id)
    if request is None:
        return
    request.lead_id = lead.id
    request.name, request.phone, request.email = lead.name, lead.phone, lead.email
    request.updated_at = now
    session.add(request)
    if lead.booking_status == "none":
        lead.booking_status = "requested"
        session.add(lead)
