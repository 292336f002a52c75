"""Leads for operators: list, export (CSV safe for spreadsheets, or JSON), and recovery
of the durable spool the chat engine writes when the database refused a lead.

CSV cells that a spreadsheet would read as a formula (starting with = + - @, a tab or a
carriage return) are prefixed with an apostrophe. Recovery is idempotent: a lead is
matched by phone or e-mail within its workspace, so importing the same spool twice
changes nothing; imported entries move to `<spool>.imported` and failures stay.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from tcai.chat import spool
from tcai.chat.contacts import Contacts
from tcai.chat.spool import SpoolEntry
from tcai.db.engine import session_scope
from tcai.db.models import (
    LEAD_PRIORITIES,
    LEAD_STATUSES,
    MESSAGE_SOURCES,
    Bot,
    Conversation,
    Lead,
    Message,
    Workspace,
)
from tcai.db.types import utcnow
from tcai.errors import InvalidInput, NotFound

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
EXPORT_COLUMNS = (
    "lead_id",
    "created_at",
    "updated_at",
    "name",
    "phone",
    "email",
    "status",
    "priority",
    "source",
    "service_requested",
    "booking_status",
    "consent_text",
    "consent_at",
    "bot_id",
)


def get_workspace(session: Session, slug: str) -> Workspace:
    workspace = session.exec(select(Workspace).where(Workspace.slug == slug)).first()
    if workspace is None:
        raise NotFound(f"no workspace '{slug}'; see tcai clients list")
    return workspace


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """'7d', '12h', '2026-11-01' or an ISO timestamp → an aware UTC datetime."""
    if not text:
        return None
    value = text.strip()
    now = now or utcnow()
    units = {"d": "days", "h": "hours", "m": "minutes"}
    if value[:-1].isdigit() and value[-1:] in units:
        return now - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"--since: '{text}' is not a date (2026-11-01) or an age (7d, 12h)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=now.tzinfo)


def list_leads(
    engine: Engine, workspace: str, *, status: str | None = None, since: datetime | None = None
) -> list[dict[str, Any]]:
    if status is not None and status not in LEAD_STATUSES:
        raise InvalidInput(f"--status: must be one of {', '.join(LEAD_STATUSES)}")
    with session_scope(engine) as session:
        ws = get_workspace(session, workspace)
        query = select(Lead, Bot.bot_id).join(Bot, col(Lead.bot_id) == col(Bot.id), isouter=True)
        query = query.where(Lead.workspace_id == ws.id).order_by(
            col(Lead.created_at).desc(), col(Lead.id).desc()
        )
        if status:
            query = query.where(Lead.status == status)
        if since:
            query = query.where(col(Lead.created_at) >= since)
        return [_lead_row(lead, bot_id) for lead, bot_id in session.exec(query)]


def _lead_row(lead: Lead, bot_id: str | None) -> dict[str, Any]:
    return {
        "lead_id": lead.id,
        "created_at": lead.created_at.isoformat(),
        "updated_at": lead.updated_at.isoformat(),
        "name": lead.name,
        "phone": lead.phone,
        "email": lead.email,
        "status": lead.status,
        "priority": lead.priority,
        "source": lead.source,
        "service_requested": lead.service_requested,
        "booking_status": lead.booking_status,
        "consent_text": lead.consent_text,
        "consent_at": lead.consent_at.isoformat() if lead.consent_at else None,
        "bot_id": bot_id,
    }


def safe_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def to_csv(rows: Sequence[dict[str, Any]], *, bom: bool = False) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow([safe_cell(row.get(column)) for column in EXPORT_COLUMNS])
    return ("\ufeff" if bom else "") + buffer.getvalue()


@dataclass
class RecoveryReport:
    imported: int = 0
    already_present: int = 0
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "already_present": self.already_present,
            "failed": self.failed,
        }


def _recover_one(session: Session, entry: SpoolEntry) -> bool:
    """Import one spooled turn; True when it added or changed anything.

    The turn goes through the chat engine's own write (`persist_turn`): the conversation
    log, the lead, usage and the webhook events, exactly as if the database had taken it
    at the time. A turn whose visitor message is already stored (the write finished after
    all, or an earlier import) only has its lead matched, which changes nothing twice."""
    from tcai.chat.store import TurnContext, TurnRecord, persist_turn, upsert_lead

    bot = session.exec(select(Bot).where(Bot.bot_id == entry.bot_id)).first()
    if bot is None or bot.id is None:
        raise NotFound(f"bot {entry.bot_id!r} no longer exists")
    workspace = session.get(Workspace, bot.workspace_id)
    assert workspace is not None and workspace.id is not None
    if workspace.slug != entry.client_id:
        raise NotFound(f"bot {entry.bot_id!r} does not belong to client {entry.client_id!r}")
    contacts = Contacts(**{k: entry.contacts.get(k) for k in ("name", "phone", "email", "consent")})
    ctx = TurnContext(
        workspace_id=workspace.id,
        client_id=workspace.slug,
        workspace_status=workspace.status,
        plan=workspace.plan,
        bot_pk=bot.id,
        bot_id=bot.bot_id,
        bot_status=bot.status,
        config_version=bot.config_version,
        messages_this_month=0,
        leads_this_month=0,
    )
    config = bot.config if isinstance(bot.config, dict) else {}
    record = TurnRecord(
        session_id=entry.session_id,
        visitor_hash=None,
        user_text=entry.message,
        reply_text=entry.reply,
        source=entry.source if entry.source in MESSAGE_SOURCES else "failsafe",
        latency_ms=0,
        contacts=contacts,
        priority=entry.priority if entry.priority in LEAD_PRIORITIES else "normal",
        webhook_url=config.get("webhook_url") or None,
        business_name=workspace.name,
        now=entry.spooled_at,
        counted=entry.source not in ("paused", "limit"),
    )
    if not entry.message or _turn_stored(session, bot.id, entry):
        lead, created, changed = upsert_lead(session, ctx, None, record)
    else:
        result = persist_turn(session, ctx, record)
        lead = session.get(Lead, result.lead_id) if result.lead_id is not None else None
        created, changed = result.lead_created, True
    if lead is not None and created:
        lead.source = "spool"
        session.add(lead)
    return created or changed


def _turn_stored(session: Session, bot_pk: int, entry: SpoolEntry) -> bool:
    """Is this spooled turn's visitor message already in the conversation log?"""
    window = timedelta(seconds=2)
    found = session.exec(
        select(Message.id)
        .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
        .where(
            Conversation.bot_id == bot_pk,
            Conversation.session_id == entry.session_id,
            Message.role == "user",
            Message.text == entry.message,
            col(Message.created_at) >= entry.spooled_at - window,
            col(Message.created_at) <= entry.spooled_at + window,
        )
    ).first()
    return found is not None


def recover_spool(engine: Engine, path: Path) -> RecoveryReport:
    """Import the spool at `path`. Safe while daemons keep appending to it, and safe to
    run twice; what cannot be imported stays in the spool with the reason reported."""
    report = RecoveryReport()
    taken = spool.take(path)
    if taken is None:
        return report
    keep: list[str] = []
    done: list[str] = []
    try:
        for number, line in enumerate(spool.read_lines(taken), 1):
            try:
                entry = SpoolEntry.from_line(line)
                with session_scope(engine) as session:
                    changed = _recover_one(session, entry)
                report.imported += int(changed)
                report.already_present += int(not changed)
                done.append(line)
            except Exception as exc:  # keep the line; say why, without its personal data
                report.failed.append(f"line {number}: {type(exc).__name__}: {str(exc)[:120]}")
                keep.append(line)
    finally:
        handled = len(done) + len(keep)
        rest = spool.read_lines(taken)[handled:]  # not reached (an error escaped): keep
        spool.put_back(path, taken, keep + rest, done)
    return report
