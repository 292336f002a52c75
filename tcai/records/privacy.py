"""Privacy requests: everything the database holds about one person, exported or erased.

A person is named by one e-mail address or one phone number, normalised first by the same
validators every other door uses (`normalise_email`, `normalise_phone`). The person's own
leads, in any workspace, link further identifiers: a lead found by e-mail also gives the
person's phone, and the search covers it too (one level only: the identifiers on the leads
that hold the given one).

What is about the person:
- leads whose e-mail or phone is one of the identifiers;
- the conversations of those leads, and every conversation with a message that mentions an
  identifier (an e-mail in any case; a phone in E.164 or with national punctuation:
  +17725550142, 772-555-0142, (772) 555-0142, 7725550142, ...), with all their messages: a
  conversation is one visitor's, so it goes whole;
- booking events and appointment requests of those leads or conversations, or that hold an
  identifier;
- outbox rows whose payload mentions an identifier, one of those leads or conversations,
  with their delivery log (outbox_attempt);
- audit_log and system_log rows whose text or JSON mentions an identifier;
- login_attempt rows made with the e-mail.

`erase_person` deletes what is the person's own (messages, conversations, leads, booking
events, appointment requests, pending deliveries and their attempts, login attempts) and
anonymises what records the business's operation: delivered and dead outbox rows keep
their row with the payload `{"erased": true}`; log rows keep their row with every mention
replaced by "[erased]". All of it in one transaction, with one `privacy.erase` audit entry
that holds counts and the sha256 of the normalised identifier, never the identifier.
`export_person` only reads, apart from its own `privacy.export` audit entry (same shape).

Scoping: without a workspace, every workspace is searched, and so are the rows that belong
to none (audit and system log rows without a workspace, login attempts). With a workspace,
only rows whose workspace_id is that workspace are searched and touched: erasing a person
from one business leaves what other businesses hold, and the global rows, alone; an erase
without a workspace covers those. Linking identifiers (above) is the one step that looks
at every workspace's leads, so an erase by e-mail also finds the business that only ever
had the person's phone.

Deliberately not here: operator accounts (app_user, membership, sessions, lockout) are the
agency's staff and managed by `tcai users`; files outside the database (the durable lead
spool, emptied by `tcai leads recover`, and the JSON-lines logs, redacted as they are
written); usage counters, which are aggregates with no person in them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import phonenumbers
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, SQLModel, col, select

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
from tcai.errors import InvalidInput, NotFound, UsageError
from tcai.records.safe_mode import ensure_not_demo
from tcai.records.tables import table_names
from tcai.text.contacts import normalise_email, normalise_phone

ERASED = "[erased]"
ERASED_PAYLOAD: dict[str, Any] = {"erased": True}
TABLES = table_names(personal=True)
DELETED_TABLES = (
    "message",
    "conversation",
    "lead",
    "booking_event",
    "appointment_request",
    "outbox",
    "outbox_attempt",
    "login_attempt",
)
ANONYMISED_TABLES = ("outbox", "outbox_attempt", "audit_log", "system_log")
# Bound parameters per IN (...) list: far below SQLite's and PostgreSQL's limits.
_CHUNK = 500
# What may separate the digits of a written phone number: "(772) 555-0142", "772.555.0142".
_PHONE_GAP = r"[\s().\-/]{0,2}"

_T = TypeVar("_T")


# --- Identifiers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Identifier:
    """The identifier an operator gave, normalised."""

    kind: str  # "email" or "phone"
    value: str

    @property
    def sha256(self) -> str:
        """Unsalted on purpose: the same person's later requests can be matched to it."""
        return hashlib.sha256(self.value.encode("utf-8")).hexdigest()

    @property
    def target(self) -> str:
        return f"{self.kind}:sha256:{self.sha256[:16]}"


def parse_identifier(*, email: str | None = None, phone: str | None = None) -> Identifier:
    """Exactly one of e-mail or phone, normalised; a malformed one names its flag."""
    if (email is None) == (phone is None):
        raise UsageError("give exactly one of --email or --phone")
    if email is not None:
        normalised = normalise_email(email)
        if normalised is None:
            raise InvalidInput(f"--email: '{email}' is not a valid e-mail address")
        return Identifier("email", normalised)
    assert phone is not None
    normalised = normalise_phone(phone)
    if normalised is None:
        raise InvalidInput(f"--phone: '{phone}' is not a valid phone number")
    return Identifier("phone", normalised)


def _email_pattern(email: str) -> str:
    local, _, domain = email.rpartition("@")
    # Also the URL-encoded form ("ana%40shop.co"), as it appears in links and query strings.
    return rf"(?<![\w.%+-]){re.escape(local)}(?:@|%40){re.escape(domain)}(?![\w-]|\.[\w-])"


def _phone_pattern(e164: str) -> str:
    number = phonenumbers.parse(e164, None)
    national = phonenumbers.national_significant_number(number)
    prefixes = [rf"(?:\+|00)?{number.country_code}"]
    region = phonenumbers.region_code_for_number(number)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region) if region else None
    if metadata is not None and metadata.national_prefix:
        prefixes.append(re.escape(metadata.national_prefix))
    digits = _PHONE_GAP.join(national)
    return rf"(?<![\d+])\(?(?:(?:{'|'.join(prefixes)}){_PHONE_GAP})?{digits}(?!\d)"


@dataclass(frozen=True)
class Person:
    """Every identifier of one person and how to recognise them in stored text."""

    given: Identifier
    emails: tuple[str, ...]
    phones: tuple[str, ...]
    pattern: re.Pattern[str]
    # Substrings every written form contains (lower-case), for the database's prefilter.
    needles: tuple[str, ...]

    def mentions(self, value: Any) -> bool:
        """True when a text, or any key or string inside a JSON value, names the person."""
        if isinstance(value, str):
            return self.pattern.search(value) is not None
        if isinstance(value, dict):
            return any(self.mentions(k) or self.mentions(v) for k, v in value.items())
        if isinstance(value, list):
            return any(self.mentions(v) for v in value)
        return False

    def redact(self, value: Any) -> Any:
        """The same text or JSON value with every mention replaced by "[erased]"."""
        if isinstance(value, str):
            return self.pattern.sub(ERASED, value)
        if isinstance(value, dict):
            return {self.redact(k): self.redact(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact(v) for v in value]
        return value


def make_person(given: Identifier, emails: Iterable[str], phones: Iterable[str]) -> Person:
    email_set = sorted(set(emails) | ({given.value} if given.kind == "email" else set()))
    phone_set = sorted(set(phones) | ({given.value} if given.kind == "phone" else set()))
    parts = [_email_pattern(e) for e in email_set] + [_phone_pattern(p) for p in phone_set]
    needles: list[str] = []
    for email in email_set:
        needles += [email, email.replace("@", "%40")]
    for phone in phone_set:
        # The last four digits are never split by punctuation in any usual written form.
        needles.append(phonenumbers.national_significant_number(phonenumbers.parse(phone))[-4:])
    return Person(
        given=given,
        emails=tuple(email_set),
        phones=tuple(phone_set),
        pattern=re.compile("|".join(parts), re.IGNORECASE),
        needles=tuple(dict.fromkeys(needles)),
    )


# --- Finding -------------------------------------------------------------------------------


def _chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _contains_any(expression: Any, needles: Iterable[str]) -> ColumnElement[bool]:
    """A case-insensitive substring prefilter; matches are then confirmed in Python."""
    lowered = sa.func.lower(sa.cast(expression, sa.Text))
    terms = [lowered.like(f"%{_escape_like(n.lower())}%", escape="\\") for n in needles]
    return sa.or_(*terms) if terms else sa.false()


def _in(column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    items = sorted(set(values))
    return column.in_(items) if items else sa.false()


def _scope(column: Any, workspace: Workspace | None) -> list[ColumnElement[bool]]:
    return [column == workspace.id] if workspace is not None else []


@dataclass
class Found:
    """Every row about one person, by table."""

    leads: list[Lead] = field(default_factory=list)
    conversations: list[Conversation] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    booking_events: list[BookingEvent] = field(default_factory=list)
    appointment_requests: list[AppointmentRequest] = field(default_factory=list)
    outbox: list[Outbox] = field(default_factory=list)
    outbox_attempts: list[OutboxAttempt] = field(default_factory=list)
    audit_logs: list[AuditLog] = field(default_factory=list)
    system_logs: list[SystemLog] = field(default_factory=list)
    login_attempts: list[LoginAttempt] = field(default_factory=list)

    def by_table(self) -> dict[str, Sequence[SQLModel]]:
        return {
            "lead": self.leads,
            "conversation": self.conversations,
            "message": self.messages,
            "booking_event": self.booking_events,
            "appointment_request": self.appointment_requests,
            "outbox": self.outbox,
            "outbox_attempt": self.outbox_attempts,
            "audit_log": self.audit_logs,
            "system_log": self.system_logs,
            "login_attempt": self.login_attempts,
        }

    def counts(self) -> dict[str, int]:
        return {table: len(rows) for table, rows in self.by_table().items()}

    def workspace_ids(self) -> set[int]:
        ids: set[int | None] = set()
        for rows in self.by_table().values():
            ids |= {getattr(row, "workspace_id", None) for row in rows}
        return {i for i in ids if i is not None}


def get_workspace(session: Session, slug: str) -> Workspace:
    workspace = session.exec(select(Workspace).where(Workspace.slug == slug.strip())).first()
    if workspace is None:
        raise NotFound(f"no workspace '{slug}'; see tcai clients list")
    return workspace


def _rows(session: Session, model: type[_T], ids: Iterable[int]) -> list[_T]:
    wanted = sorted(set(ids))
    found: list[_T] = []
    id_column = col(model.id)  # type: ignore[attr-defined]
    for chunk in _chunks(wanted):
        found += session.exec(select(model).where(id_column.in_(chunk))).all()
    return sorted(found, key=lambda row: row.id)  # type: ignore[attr-defined]


def _find_leads(
    session: Session, emails: Iterable[str], phones: Iterable[str], workspace: Workspace | None
) -> list[Lead]:
    query = select(Lead).where(
        sa.or_(_in(Lead.email, emails), _in(Lead.phone, phones)),
        *_scope(Lead.workspace_id, workspace),
    )
    return list(session.exec(query.order_by(col(Lead.id))).all())


def find_person(
    session: Session, given: Identifier, workspace: Workspace | None
) -> tuple[Person, Found]:
    """The person's identifiers and every row about them (in `workspace` when given)."""
    first = make_person(given, (), ())
    # Identifiers link across businesses (the agency knows Rosa's e-mail and phone are hers
    # from any of her leads); the search itself stays inside the scope.
    linked = _find_leads(session, first.emails, first.phones, None)
    person = make_person(
        given,
        (lead.email.lower() for lead in linked if lead.email),
        (lead.phone for lead in linked if lead.phone),
    )
    found = Found(leads=_find_leads(session, person.emails, person.phones, workspace))
    lead_ids = {lead.id for lead in found.leads if lead.id is not None}

    conv_ids = set(
        session.exec(
            select(Conversation.id).where(
                _in(Conversation.lead_id, lead_ids), *_scope(Conversation.workspace_id, workspace)
            )
        ).all()
    )
    first_convs = {lead.conversation_id for lead in found.leads if lead.conversation_id}
    conv_ids |= set(
        session.exec(
            select(Conversation.id).where(
                _in(Conversation.id, first_convs), *_scope(Conversation.workspace_id, workspace)
            )
        ).all()
    )
    mentioned = session.exec(
        select(Message.conversation_id, Message.text)
        .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
        .where(
            _contains_any(Message.text, person.needles),
            *_scope(Conversation.workspace_id, workspace),
        )
    ).all()
    conv_ids |= {conv_id for conv_id, text in mentioned if person.mentions(text)}
    conv_ids.discard(None)
    found.conversations = _rows(session, Conversation, (c for c in conv_ids if c is not None))
    found.messages = sorted(
        (
            message
            for chunk in _chunks(sorted(c for c in conv_ids if c is not None))
            for message in session.exec(
                select(Message).where(col(Message.conversation_id).in_(chunk))
            ).all()
        ),
        key=lambda message: message.id or 0,
    )

    events = session.exec(
        select(BookingEvent).where(
            sa.or_(
                _in(BookingEvent.lead_id, lead_ids),
                _in(BookingEvent.conversation_id, conv_ids),
                _contains_any(BookingEvent.url, person.needles),
            ),
            *_scope(BookingEvent.workspace_id, workspace),
        )
    ).all()
    found.booking_events = sorted(
        (
            e
            for e in events
            if e.lead_id in lead_ids or e.conversation_id in conv_ids or person.mentions(e.url)
        ),
        key=lambda e: e.id or 0,
    )

    requests = session.exec(
        select(AppointmentRequest).where(
            sa.or_(
                _in(AppointmentRequest.lead_id, lead_ids),
                _in(AppointmentRequest.conversation_id, conv_ids),
                _in(sa.func.lower(AppointmentRequest.email), person.emails),
                _in(AppointmentRequest.phone, person.phones),
                _contains_any(AppointmentRequest.details, person.needles),
                _contains_any(AppointmentRequest.preferred_time, person.needles),
            ),
            *_scope(AppointmentRequest.workspace_id, workspace),
        )
    ).all()
    found.appointment_requests = sorted(
        (
            r
            for r in requests
            if r.lead_id in lead_ids
            or r.conversation_id in conv_ids
            or (r.email or "").lower() in person.emails
            or r.phone in person.phones
            or person.mentions(r.details)
            or person.mentions(r.preferred_time)
        ),
        key=lambda r: r.id or 0,
    )

    found.outbox = _find_outbox(session, person, found, workspace)
    found.outbox_attempts = sorted(
        (
            attempt
            for chunk in _chunks([o.id for o in found.outbox if o.id is not None])
            for attempt in session.exec(
                select(OutboxAttempt).where(col(OutboxAttempt.outbox_id).in_(chunk))
            ).all()
        ),
        key=lambda a: a.id or 0,
    )

    audits = session.exec(
        select(AuditLog).where(
            sa.or_(
                _contains_any(AuditLog.before, person.needles),
                _contains_any(AuditLog.after, person.needles),
                _contains_any(AuditLog.target, person.needles),
                _contains_any(AuditLog.reason, person.needles),
            ),
            *_scope(AuditLog.workspace_id, workspace),
        )
    ).all()
    found.audit_logs = sorted(
        (
            a
            for a in audits
            if any(person.mentions(v) for v in (a.before, a.after, a.target, a.reason))
        ),
        key=lambda a: a.id or 0,
    )

    logs = session.exec(
        select(SystemLog).where(
            sa.or_(
                _contains_any(SystemLog.message, person.needles),
                _contains_any(SystemLog.details, person.needles),
            ),
            *_scope(SystemLog.workspace_id, workspace),
        )
    ).all()
    found.system_logs = sorted(
        (s for s in logs if person.mentions(s.message) or person.mentions(s.details)),
        key=lambda s: s.id or 0,
    )

    if workspace is None and person.emails:
        found.login_attempts = list(
            session.exec(
                select(LoginAttempt)
                .where(_in(sa.func.lower(LoginAttempt.email), person.emails))
                .order_by(col(LoginAttempt.id))
            ).all()
        )
    return person, found


def _find_outbox(
    session: Session, person: Person, found: Found, workspace: Workspace | None
) -> list[Outbox]:
    """Deliveries that name the person, or one of their leads or conversations."""
    sessions = {(c.bot_id, c.session_id) for c in found.conversations}
    leads = {(lead.workspace_id, lead.id) for lead in found.leads}
    tokens = [session_id for _, session_id in sessions]
    tokens += [f'"lead_id": {lead_id}' for _, lead_id in leads]
    candidates = session.exec(
        select(Outbox).where(
            sa.or_(
                _contains_any(Outbox.payload, (*person.needles, *tokens)),
                _contains_any(Outbox.last_error, person.needles),
            ),
            *_scope(Outbox.workspace_id, workspace),
        )
    ).all()

    def about(row: Outbox) -> bool:
        if person.mentions(row.payload) or person.mentions(row.last_error):
            return True
        data = row.payload.get("data") if isinstance(row.payload, dict) else None
        if not isinstance(data, dict):
            return False
        if (row.bot_id, data.get("session_id")) in sessions:
            return True
        nested = data.get("lead")
        lead_ids = {
            data.get("lead_id"),
            nested.get("lead_id") if isinstance(nested, dict) else None,
        }
        return any((row.workspace_id, lead_id) in leads for lead_id in lead_ids)

    return sorted((row for row in candidates if about(row)), key=lambda row: row.id or 0)


# --- Export --------------------------------------------------------------------------------


def _workspaces(session: Session, ids: Iterable[int]) -> list[Workspace]:
    return _rows(session, Workspace, ids)


def _record(row: SQLModel) -> dict[str, Any]:
    """A row as JSON-ready values, in the table's column order."""
    values = row.model_dump(mode="json")
    columns = row.__table__.columns  # type: ignore[attr-defined]
    return {column.name: values[column.name] for column in columns}


def export_person(
    engine: Engine,
    *,
    email: str | None = None,
    phone: str | None = None,
    workspace: str | None = None,
    actor: str = "cli",
) -> dict[str, Any]:
    """One JSON-serialisable document with every record about the person."""
    given = parse_identifier(email=email, phone=phone)
    with session_scope(engine) as session:
        scope = get_workspace(session, workspace) if workspace is not None else None
        person, found = find_person(session, given, scope)
        counts = found.counts()
        document: dict[str, Any] = {
            "generated_at": utcnow().isoformat(),
            "identifiers": {
                "given": {"kind": given.kind, "value": given.value},
                "emails": list(person.emails),
                "phones": list(person.phones),
            },
            "workspace": scope.slug if scope is not None else None,
            "scope": f"workspace {scope.slug}" if scope is not None else "all workspaces",
            "counts": counts,
            "total": sum(counts.values()),
            "workspaces": [
                {"id": ws.id, "slug": ws.slug, "name": ws.name, "status": ws.status}
                for ws in _workspaces(session, found.workspace_ids())
            ],
            "records": {
                table: [_record(row) for row in rows] for table, rows in found.by_table().items()
            },
        }
        record_audit(
            session,
            actor=actor,
            action="privacy.export",
            target=given.target,
            workspace_id=scope.id if scope is not None else None,
            after={"identifier_sha256": given.sha256, "counts": counts},
        )
    return document


def count_person(
    engine: Engine,
    *,
    email: str | None = None,
    phone: str | None = None,
    workspace: str | None = None,
) -> dict[str, int]:
    """How many rows per table are about the person; reads only (an erase's preview)."""
    given = parse_identifier(email=email, phone=phone)
    with session_scope(engine) as session:
        scope = get_workspace(session, workspace) if workspace is not None else None
        return find_person(session, given, scope)[1].counts()


# --- Erasure -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErasureReceipt:
    kind: str
    identifier_sha256: str
    workspace: str | None
    erased_at: datetime
    linked_identifiers: int
    deleted: dict[str, int]
    anonymised: dict[str, int]

    @property
    def nothing_found(self) -> bool:
        return not any(self.deleted.values()) and not any(self.anonymised.values())

    @property
    def total(self) -> int:
        return sum(self.deleted.values()) + sum(self.anonymised.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "nothing_found": self.nothing_found,
            "identifier": {"kind": self.kind, "sha256": self.identifier_sha256},
            "linked_identifiers": self.linked_identifiers,
            "workspace": self.workspace,
            "erased_at": self.erased_at.isoformat(),
            "deleted": dict(self.deleted),
            "anonymised": dict(self.anonymised),
            "total": self.total,
        }


def _delete(session: Session, model: Any, column: Any, ids: Iterable[int | None]) -> int:
    wanted = sorted({i for i in ids if i is not None})
    deleted = 0
    for chunk in _chunks(wanted):
        result = session.execute(sa.delete(model).where(col(column).in_(chunk)))
        deleted += int(getattr(result, "rowcount", 0) or 0)
    return deleted


def _update(session: Session, model: Any, row_id: int | None, **values: Any) -> None:
    session.execute(sa.update(model).where(col(model.id) == row_id).values(**values))


def erase_person(
    engine: Engine,
    *,
    email: str | None = None,
    phone: str | None = None,
    workspace: str | None = None,
    actor: str = "cli",
    demo_safe_mode: bool = False,
) -> ErasureReceipt:
    """Delete or anonymise every record about the person, in one transaction, audited."""
    given = parse_identifier(email=email, phone=phone)
    deleted = dict.fromkeys(DELETED_TABLES, 0)
    anonymised = dict.fromkeys(ANONYMISED_TABLES, 0)
    with session_scope(engine) as session:
        scope = get_workspace(session, workspace) if workspace is not None else None
        action = "erase a person's records"
        if scope is not None:
            ensure_not_demo(scope.slug, scope.status, demo_safe_mode=demo_safe_mode, action=action)
        person, found = find_person(session, given, scope)
        for ws in _workspaces(session, found.workspace_ids()):
            ensure_not_demo(ws.slug, ws.status, demo_safe_mode=demo_safe_mode, action=action)
        # The rows are read; from here on every change goes through Core statements.
        session.expunge_all()

        pending = {o.id for o in found.outbox if o.status == "pending"}
        deleted["outbox_attempt"] = _delete(
            session, OutboxAttempt, OutboxAttempt.outbox_id, pending
        )
        deleted["outbox"] = _delete(session, Outbox, Outbox.id, pending)
        for row in found.outbox:
            if row.id not in pending:
                _update(
                    session,
                    Outbox,
                    row.id,
                    payload=ERASED_PAYLOAD,
                    last_error=person.redact(row.last_error),
                )
                anonymised["outbox"] += 1
        for attempt in found.outbox_attempts:
            if attempt.outbox_id not in pending and person.mentions(attempt.error):
                _update(session, OutboxAttempt, attempt.id, error=person.redact(attempt.error))
                anonymised["outbox_attempt"] += 1

        lead_ids = [lead.id for lead in found.leads]
        conv_ids = [c.id for c in found.conversations]
        deleted["appointment_request"] = _delete(
            session,
            AppointmentRequest,
            AppointmentRequest.id,
            (r.id for r in found.appointment_requests),
        )
        deleted["booking_event"] = _delete(
            session, BookingEvent, BookingEvent.id, (e.id for e in found.booking_events)
        )
        # Someone else's lead may point at a conversation that mentioned this person.
        for chunk in _chunks([c for c in conv_ids if c is not None]):
            session.execute(
                sa.update(Lead)
                .where(col(Lead.conversation_id).in_(chunk))
                .values(conversation_id=None)
            )
        deleted["message"] = _delete(session, Message, Message.conversation_id, conv_ids)
        deleted["conversation"] = _delete(session, Conversation, Conversation.id, conv_ids)
        for chunk in _chunks([i for i in lead_ids if i is not None]):
            session.execute(
                sa.update(Conversation)
                .where(col(Conversation.lead_id).in_(chunk))
                .values(lead_id=None)
            )
        deleted["lead"] = _delete(session, Lead, Lead.id, lead_ids)
        deleted["login_attempt"] = _delete(
            session, LoginAttempt, LoginAttempt.id, (a.id for a in found.login_attempts)
        )

        for audit in found.audit_logs:
            _update(
                session,
                AuditLog,
                audit.id,
                before=person.redact(audit.before),
                after=person.redact(audit.after),
                target=person.redact(audit.target),
                reason=person.redact(audit.reason),
            )
            anonymised["audit_log"] += 1
        for log in found.system_logs:
            _update(
                session,
                SystemLog,
                log.id,
                message=person.redact(log.message),
                details=person.redact(log.details),
            )
            anonymised["system_log"] += 1

        receipt = ErasureReceipt(
            kind=given.kind,
            identifier_sha256=given.sha256,
            workspace=scope.slug if scope is not None else None,
            erased_at=utcnow(),
            linked_identifiers=len(person.emails) + len(person.phones) - 1,
            deleted=deleted,
            anonymised=anonymised,
        )
        record_audit(
            session,
            actor=actor,
            action="privacy.erase",
            target=given.target,
            workspace_id=scope.id if scope is not None else None,
            before={"identifier_sha256": given.sha256, "found": found.counts()},
            after={
                "identifier_sha256": given.sha256,
                "deleted": dict(deleted),
                "anonymised": dict(anonymised),
            },
        )
    return receipt
