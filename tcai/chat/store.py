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

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from tcai.chat.directory import CachedBot
from tcai.db.engine import upsert_insert
from tcai.db.models import (
    LEAD_PRIORITIES,
    AppointmentRequest,
    BookingEvent,
    Conversation,
    Lead,
    Message,
    Usage,
)
from tcai.db.prepared import Prepared
from tcai.db.types import utcnow
from tcai.delivery.outbox import EventSource, enqueue
from tcai.text.contacts import Contacts

HISTORY_MESSAGES = 10


@dataclass
class KnownLead:
    """The conversation's lead as the turn's read found it: enough to tell, without the
    ORM, whether this turn changes it (`_apply` decides, for both)."""

    id: int
    name: str | None
    phone: str | None
    email: str | None
    consent_text: str | None = None
    priority: str = "normal"
    service_requested: str | None = None
    booking_status: str = "none"
    status: str = "new"
    consent_at: datetime | None = None
    updated_at: datetime | None = None

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "id",
        "name",
        "phone",
        "email",
        "consent_text",
        "priority",
        "service_requested",
        "booking_status",
        "status",
    )


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
    leads_cap: int | None = None
    """The plan's leads a month (None: unlimited). Leads over it are stored and delivered
    all the same, marked `over_quota`; the owner is told (docs/chat-pipeline.md)."""
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


# -- statements, built once per dialect (docs/chat-pipeline.md, "The turn's database work")
#
# The turn's two transactions run these Core statements, compiled once and executed on
# the driver's cursor (`tcai.db.prepared`): no ORM query building, identity map or flush,
# nor SQLAlchemy's per-execution work, for the reads and writes every turn makes. The
# ORM stays for the rare paths (a lead created or changed, an appointment request,
# outbox events), on the same connection and transaction.

_CONVERSATION = Conversation.__table__  # type: ignore[attr-defined]
_MESSAGE = Message.__table__  # type: ignore[attr-defined]
_LEAD = Lead.__table__  # type: ignore[attr-defined]
_REQUEST = AppointmentRequest.__table__  # type: ignore[attr-defined]
_USAGE = Usage.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class _Statements:
    reserve: dict[bool, Prepared]
    """The message quota's reservation, by whether the plan caps messages."""
    usage: Prepared
    conversation: Prepared
    history: Prepared
    new_conversation: Prepared
    messages: Prepared
    touch: dict[tuple[bool, bool], Prepared]
    """The conversation's counters after a turn, by (sets the lead, flags a crisis)."""
    add_usage: Prepared
    add_lead_usage: Prepared
    """`add_usage` for a turn that created a lead: returns the month's leads after it."""
    new_lead: Prepared
    """A lead, unless one with the same phone or e-mail exists (then no row comes back)."""
    attach_request: Prepared
    """The conversation's open appointment request gets the new lead's contacts."""


_STATEMENTS: dict[str, _Statements] = {}


def _statements(conn: sa.Connection) -> _Statements:
    dialect = conn.dialect.name
    built = _STATEMENTS.get(dialect)
    if built is None:
        built = _STATEMENTS[dialect] = _build(upsert_insert(dialect))
    return built


def _build(insert: Any) -> _Statements:
    ws: Any = sa.bindparam("ws")
    month: Any = sa.bindparam("month")

    def reserve(message_cap: bool) -> Any:
        return (
            insert(_USAGE)
            .values(workspace_id=ws, month=month, messages=1, leads=0)
            .on_conflict_do_update(
                index_elements=["workspace_id", "month"],
                set_={"messages": _USAGE.c.messages + 1},
                where=_USAGE.c.messages < sa.bindparam("cap") if message_cap else None,
            )
            .returning(_USAGE.c.messages, _USAGE.c.leads)
        )

    add_usage = (
        insert(_USAGE)
        .values(
            workspace_id=ws,
            month=month,
            messages=sa.bindparam("messages"),
            leads=sa.bindparam("leads"),
        )
        .on_conflict_do_update(
            index_elements=["workspace_id", "month"],
            set_={
                "messages": _USAGE.c.messages + sa.bindparam("messages"),
                "leads": _USAGE.c.leads + sa.bindparam("leads"),
            },
        )
    )

    open_request = (
        sa.select(_REQUEST.c.id)
        .where(_REQUEST.c.conversation_id == _CONVERSATION.c.id, _REQUEST.c.status == "new")
        .order_by(_REQUEST.c.id)
        .limit(1)
        .scalar_subquery()
    )

    def touch(sets_lead: bool, crisis: bool) -> Any:
        values: dict[str, Any] = {
            "message_count": _CONVERSATION.c.message_count + 2,
            "last_activity_at": sa.bindparam("now", type_=_CONVERSATION.c.last_activity_at.type),
        }
        if sets_lead:
            values["lead_id"] = sa.bindparam("lead_id")
        if crisis:
            values.update(flag_crisis=sa.true(), flag_needs_review=sa.true())
        return (
            sa.update(_CONVERSATION)
            .where(_CONVERSATION.c.id == sa.bindparam("conversation_id"))
            .values(**values)
        )

    return _Statements(
        reserve={capped: Prepared(reserve(capped)) for capped in (False, True)},
        usage=Prepared(
            sa.select(_USAGE.c.messages, _USAGE.c.leads).where(
                _USAGE.c.workspace_id == ws, _USAGE.c.month == month
            )
        ),
        conversation=Prepared(
            sa.select(
                _CONVERSATION.c.id,
                open_request,
                *(_LEAD.c[name] for name in KnownLead.COLUMNS),
            )
            .select_from(_CONVERSATION)
            .outerjoin(_LEAD, _LEAD.c.id == _CONVERSATION.c.lead_id)
            .where(
                _CONVERSATION.c.bot_id == sa.bindparam("bot"),
                _CONVERSATION.c.session_id == sa.bindparam("session_id"),
            )
        ),
        history=Prepared(
            sa.select(_MESSAGE.c.role, _MESSAGE.c.text)
            .where(_MESSAGE.c.conversation_id == sa.bindparam("conversation_id"))
            .order_by(_MESSAGE.c.id.desc())
            .limit(HISTORY_MESSAGES)
        ),
        new_conversation=Prepared(
            insert(_CONVERSATION)
            .values(
                workspace_id=ws,
                bot_id=sa.bindparam("bot"),
                session_id=sa.bindparam("session_id"),
                visitor_hash=sa.bindparam("visitor_hash"),
                started_at=sa.bindparam("now", type_=_CONVERSATION.c.started_at.type),
                last_activity_at=sa.bindparam("now", type_=_CONVERSATION.c.started_at.type),
                flag_crisis=False,
                flag_needs_review=False,
                message_count=0,
            )
            # One statement for both cases: the no-op update lets RETURNING give the id.
            .on_conflict_do_update(
                index_elements=["bot_id", "session_id"], set_={"bot_id": _CONVERSATION.c.bot_id}
            )
            .returning(_CONVERSATION.c.id)
        ),
        # Both messages of the turn in one statement (one round trip, no executemany).
        messages=Prepared(
            sa.insert(_MESSAGE)
            .inline()  # no RETURNING of the new ids
            .values(
                [
                    {
                        "conversation_id": sa.bindparam("conversation_id", type_=sa.Integer()),
                        "role": role,
                        "text": sa.bindparam(f"{role}_text", type_=sa.Text()),
                        "source": sa.bindparam(f"{role}_source", type_=sa.String()),
                        "latency_ms": sa.bindparam(f"{role}_latency_ms", type_=sa.Integer()),
                        "created_at": sa.bindparam("now", type_=_MESSAGE.c.created_at.type),
                    }
                    for role in ("user", "assistant")
                ]
            )
        ),
        touch={(le, c): Prepared(touch(le, c)) for le in (False, True) for c in (False, True)},
        new_lead=Prepared(
            insert(_LEAD)
            .values({c.name: sa.bindparam(c.name, type_=c.type) for c in _LEAD.c if c.name != "id"})
            .on_conflict_do_nothing()  # the unique (workspace, phone) and (workspace, e-mail)
            .returning(_LEAD.c.id)
        ),
        attach_request=Prepared(
            sa.update(_REQUEST)
            .where(_REQUEST.c.id == sa.bindparam("request_id"))
            .values(
                lead_id=sa.bindparam("lead_id"),
                name=sa.bindparam("name"),
                phone=sa.bindparam("phone"),
                email=sa.bindparam("email"),
                updated_at=sa.bindparam("now", type_=_REQUEST.c.updated_at.type),
            )
        ),
        add_usage=Prepared(add_usage.inline()),
        add_lead_usage=Prepared(add_usage.returning(_USAGE.c.leads)),
    )


def _first(rows: list[Any]) -> Any:
    return rows[0] if rows else None


def _reserve_message(
    conn: sa.Connection, ctx: TurnContext, cap: int | None, now: datetime
) -> tuple[bool, int, int]:
    """Count this turn against the month's message quota, atomically: one upsert that
    increments the messages only while under `cap` (None = unlimited), so concurrent
    turns at the boundary never overshoot and a refused turn is not counted. Leads are
    never refused (docs/chat-pipeline.md, "Quotas"). Returns (reserved, messages, leads)."""
    statements = _statements(conn)
    params = {"ws": ctx.workspace_id, "month": month_key(now), "cap": cap}
    upsert = statements.reserve[cap is not None]
    row = _first(upsert.execute(conn, params))
    if row is not None:
        return True, int(row[0]), int(row[1])
    current = _first(statements.usage.execute(conn, params))
    return False, int(current[0]) if current else 0, int(current[1]) if current else 0


def load_context(
    conn: sa.Connection,
    bot: CachedBot,
    session_id: str,
    now: datetime,
    *,
    message_cap: int | None = None,
    leads_cap: int | None = None,
    reserve: bool = True,
) -> TurnContext:
    """The per-turn reads: this month's usage (reserving this turn's place in the quota
    when `reserve`), the conversation with its lead and open request, and its history.

    Each statement may be its own transaction (`autocommit_scope`): the reservation is
    one atomic upsert, and the reads need no snapshot in common with it. On SQLite a
    reader then never holds the write lock, and PostgreSQL is spared BEGIN and COMMIT."""
    statements = _statements(conn)
    ctx = context_for(bot)
    ctx.leads_cap = leads_cap
    if reserve:
        # Only messages are capped here: a lead over the plan's quota is still taken
        # (an abuser typing made-up numbers must not cost real visitors their contact).
        ctx.reserved, ctx.messages_this_month, ctx.leads_this_month = _reserve_message(
            conn, ctx, message_cap, now
        )
    else:
        usage = _first(
            statements.usage.execute(conn, {"ws": bot.workspace_id, "month": month_key(now)})
        )
        ctx.messages_this_month = int(usage[0]) if usage else 0
        ctx.leads_this_month = int(usage[1]) if usage else 0
    found = _first(
        statements.conversation.execute(conn, {"bot": bot.bot_pk, "session_id": session_id})
    )
    ctx.loaded = True
    if found is None:
        return ctx
    conversation_id, ctx.open_request_id, lead_id, *lead = found
    ctx.conversation_id = conversation_id
    if lead_id is not None:
        ctx.lead = KnownLead(lead_id, *lead)
    recent = statements.history.execute(conn, {"conversation_id": conversation_id})
    ctx.history = [(role, text) for role, text in reversed(recent)]
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


def _conversation_id(conn: sa.Connection, ctx: TurnContext, record: TurnRecord) -> int:
    if ctx.conversation_id is not None:
        return ctx.conversation_id
    params = {
        "ws": ctx.workspace_id,
        "bot": ctx.bot_pk,
        "session_id": record.session_id,
        "visitor_hash": record.visitor_hash,
        "now": record.now,
    }
    [(found,)] = _statements(conn).new_conversation.execute(conn, params)
    return int(found)


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


def _apply(lead: Lead | KnownLead, contacts: Contacts, record: TurnRecord) -> bool:
    """Bring the lead up to date with this turn; True when anything changed."""
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
    write: _Write,
    ctx: TurnContext,
    record: TurnRecord,
    event_type: str,
    data: dict[str, Any],
) -> int:
    """Queue `event_type` for the bot's webhook and, for a new lead, an e-mail per owner
    address (`record.notify_emails` is empty when SMTP is not configured). A bot with
    neither costs nothing here (no ORM session is opened for it)."""
    emails = record.notify_emails if event_type == "lead.created" else ()
    if not record.webhook_url and not emails:
        return 0
    source = EventSource(
        ctx.workspace_id, ctx.bot_pk, ctx.client_id, ctx.bot_id, record.business_name
    )
    return len(
        enqueue(
            write.session,
            source,
            event_type,
            data,
            now=record.now,
            webhook_url=record.webhook_url,
            emails=emails,
        )
    )


def _lead_data(lead: Lead | KnownLead) -> dict[str, Any]:
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


def _lead_unchanged(ctx: TurnContext, record: TurnRecord) -> bool:
    """The conversation already has its lead and this turn changes nothing about it —
    most turns: then the write needs no ORM at all."""
    return (
        ctx.lead is not None
        and not ctx.open_request_id
        and (record.booking is None or record.booking.handling != "internal")
        and not _apply(replace(ctx.lead), record.contacts, record)
    )


class _Write:
    """The turn's write: Core statements on one connection, and an ORM session on the
    same connection and transaction only when a rare path needs one (a lead created or
    changed, an appointment request, outbox events)."""

    def __init__(self, target: Session | sa.Connection) -> None:
        self._session = target if isinstance(target, Session) else None
        self._own = self._session is None
        self.conn = target if isinstance(target, sa.Connection) else target.connection()

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = Session(bind=self.conn, expire_on_commit=False)
        return self._session

    def finish(self) -> None:
        """Flush what the ORM holds; the caller's transaction commits it all."""
        if self._own and self._session is not None:
            self._session.flush()
            self._session.close()


def _create_lead(
    write: _Write, ctx: TurnContext, conversation_id: int, record: TurnRecord
) -> KnownLead | None:
    """A new person's lead, without the ORM, when this turn needs nothing else of it;
    None when the ORM path must decide (the phone or e-mail is already someone's lead
    in this workspace — the insert then adds nothing — or a request is involved)."""
    if (
        ctx.lead is not None
        or ctx.open_request_id
        or (record.booking is not None and record.booking.handling == "internal")
    ):
        return None
    known = KnownLead(0, None, None, None)
    _apply(known, record.contacts, record)
    # The model gives every column its default: one source of truth for a new lead.
    row = Lead(
        workspace_id=ctx.workspace_id,
        bot_id=ctx.bot_pk,
        conversation_id=conversation_id,
        source="chat",
        created_at=record.now,
        updated_at=record.now,
        **{k: v for k, v in asdict(known).items() if k not in ("id", "updated_at")},
    ).model_dump(exclude={"id"})
    found = _statements(write.conn).new_lead.execute(write.conn, row)
    if not found:
        return None
    known.id = int(found[0][0])
    if ctx.open_request_id:
        _statements(write.conn).attach_request.execute(
            write.conn,
            {
                "request_id": ctx.open_request_id,
                "lead_id": known.id,
                "name": known.name,
                "phone": known.phone,
                "email": known.email,
                "now": record.now,
            },
        )
    return known


def persist_turn(
    target: Session | sa.Connection, ctx: TurnContext, record: TurnRecord
) -> PersistResult:
    """Write the turn in the caller's transaction (a session's, or a connection's)."""
    write = _Write(target)
    result = _persist(write, ctx, record)
    write.finish()
    return result


def _persist(write: _Write, ctx: TurnContext, record: TurnRecord) -> PersistResult:
    conn = write.conn
    statements = _statements(conn)
    conversation_id = _conversation_id(conn, ctx, record)
    statements.messages.execute(
        conn,
        {
            "conversation_id": conversation_id,
            "now": record.now,
            "user_text": record.user_text,
            "user_source": "visitor",
            "user_latency_ms": None,
            "assistant_text": record.reply_text,
            "assistant_source": record.source,
            "assistant_latency_ms": record.latency_ms,
        },
    )
    lead: Lead | KnownLead | None = None
    created = changed = False
    if _lead_unchanged(ctx, record):
        assert ctx.lead is not None
        lead_id: int | None = ctx.lead.id
        sets_lead = False  # the conversation points at it already
    elif ctx.lead is None and not (record.contacts.phone or record.contacts.email):
        lead_id, sets_lead = None, False  # a name alone is not a lead yet
    elif (created_lead := _create_lead(write, ctx, conversation_id, record)) is not None:
        lead, created, changed = created_lead, True, True
        lead_id, sets_lead = created_lead.id, True
    else:
        lead, created, changed = upsert_lead(write.session, ctx, conversation_id, record)
        lead_id = lead.id if lead is not None else None
        sets_lead = lead_id is not None
    touch = {"conversation_id": conversation_id, "now": record.now}
    statements.touch[(sets_lead, record.crisis)].execute(
        conn, {**touch, "lead_id": lead_id} if sets_lead else touch
    )

    messages = 0 if ctx.reserved or not record.counted else 1
    usage = {"ws": ctx.workspace_id, "month": month_key(record.now), "messages": messages}
    over_quota = False
    if created:
        # A lead counts once: when its phone or e-mail is new to the workspace, and a
        # conversation creates at most one (later numbers update it).
        [(leads,)] = statements.add_lead_usage.execute(conn, {**usage, "leads": 1})
        over_quota = ctx.leads_cap is not None and int(leads) > ctx.leads_cap
    elif messages:
        statements.add_usage.execute(conn, {**usage, "leads": 0})

    queued = 0
    if record.booking is not None and record.booking.handling == "internal":
        queued += _record_request(write, ctx, conversation_id, lead, record)
    if lead is not None and (created or changed):
        event = "lead.created" if created else "lead.updated"
        data = _lead_data(lead)
        if over_quota:
            data["over_quota"] = True
        queued += _event(write, ctx, record, event, data)
        if over_quota and int(leads) == (ctx.leads_cap or 0) + 1:
            # The month's first lead over the plan: one event, to the webhook.
            quota = {"plan": ctx.plan, "leads_cap": ctx.leads_cap, "month": usage["month"]}
            queued += _event(write, ctx, record, "quota.leads_exceeded", quota)
    if record.crisis:
        queued += _event(
            write,
            ctx,
            record,
            "conversation.flagged",
            {"session_id": record.session_id, "reason": "crisis"},
        )
    if ctx.open_request_id and isinstance(lead, Lead) and not record.booking:
        _attach_contacts(write.session, ctx.open_request_id, lead, record.now)
    return PersistResult(conversation_id, lead_id, created, changed, queued)


def _record_request(
    write: _Write,
    ctx: TurnContext,
    conversation_id: int,
    lead: Lead | KnownLead | None,
    record: TurnRecord,
) -> int:
    """Open or complete the internal booking request; returns the outbox rows queued."""
    assert record.booking is not None
    session = write.session
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
        queued = _event(write, ctx, record, "booking.requested", data)
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
