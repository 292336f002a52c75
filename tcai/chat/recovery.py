"""Bringing spooled turns home: `tcai leads recover` (docs/chat-pipeline.md, "The spool").

Each spooled turn goes through the engine's own write (`persist_turn`): the conversation
log, the lead, usage and webhook events, as if the database had taken it at the time. A
turn already stored (the background write finished after all, or an earlier import) only
has its lead matched, so importing twice changes nothing. `tcai.chat.spool` owns the
file; this module owns the import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from tcai.chat import spool
from tcai.chat.spool import SpoolEntry
from tcai.chat.store import TurnContext, TurnRecord, persist_turn, upsert_lead
from tcai.db.engine import session_scope
from tcai.db.models import (
    LEAD_PRIORITIES,
    MESSAGE_SOURCES,
    Bot,
    Conversation,
    Lead,
    Message,
    Workspace,
)
from tcai.errors import NotFound
from tcai.text.contacts import Contacts


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
