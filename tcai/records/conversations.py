"""Conversations for operators: list them and read a transcript with each answer's source,
its lead and its booking clicks.

The portal's look-ups take the workspace's id, so a conversation of another workspace is
simply not found.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from tcai.db.engine import session_scope
from tcai.db.models import BookingEvent, Bot, Conversation, Lead, Message
from tcai.errors import NotFound
from tcai.records.leads import get_workspace


def list_conversations(
    engine: Engine,
    workspace: str,
    *,
    bot_id: str | None = None,
    flagged: bool = False,
    since: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    with session_scope(engine) as session:
        ws = get_workspace(session, workspace)
        query = (
            select(Conversation, Bot.bot_id)
            .join(Bot, col(Conversation.bot_id) == col(Bot.id))
            .where(Conversation.workspace_id == ws.id)
            .order_by(col(Conversation.last_activity_at).desc(), col(Conversation.id).desc())
            .limit(limit)
        )
        if bot_id:
            query = query.where(Bot.bot_id == bot_id)
        if flagged:
            query = query.where(col(Conversation.flag_needs_review).is_(True))
        if since:
            query = query.where(col(Conversation.last_activity_at) >= since)
        return [_summary(c, b) for c, b in session.exec(query)]


def _summary(conversation: Conversation, bot_id: str) -> dict[str, Any]:
    return {
        "conversation_id": conversation.id,
        "bot_id": bot_id,
        "session_id": conversation.session_id,
        "started_at": conversation.started_at.isoformat(),
        "last_activity_at": conversation.last_activity_at.isoformat(),
        "messages": conversation.message_count,
        "flags": [
            name
            for name, on in (
                ("crisis", conversation.flag_crisis),
                ("needs_review", conversation.flag_needs_review),
            )
            if on
        ],
        "lead_id": conversation.lead_id,
    }


def show_conversation(engine: Engine, ident: str, workspace: str | None = None) -> dict[str, Any]:
    """A conversation by id or session id, with its transcript."""
    with session_scope(engine) as session:
        query = select(Conversation, Bot.bot_id).join(Bot, col(Conversation.bot_id) == col(Bot.id))
        if ident.isdigit():
            query = query.where(Conversation.id == int(ident))
        else:
            query = query.where(Conversation.session_id == ident)
        if workspace:
            query = query.where(Conversation.workspace_id == get_workspace(session, workspace).id)
        found = session.exec(query).first()
        if found is None:
            raise NotFound(f"no conversation '{ident}'; see tcai conversations list --workspace W")
        conversation, bot_id = found
        return _transcript(session, conversation, bot_id)


def workspace_conversations(
    engine: Engine, workspace_id: int, *, limit: int = 50
) -> list[dict[str, Any]]:
    """The workspace's most recent conversations, with the lead's name when there is one."""
    with session_scope(engine) as session:
        query = (
            select(Conversation, Bot.bot_id, Lead.name)
            .join(Bot, col(Conversation.bot_id) == col(Bot.id))
            .join(Lead, col(Conversation.lead_id) == col(Lead.id), isouter=True)
            .where(Conversation.workspace_id == workspace_id)
            .order_by(col(Conversation.last_activity_at).desc(), col(Conversation.id).desc())
            .limit(limit)
        )
        return [{**_summary(c, b), "lead_name": name} for c, b, name in session.exec(query)]


def get_conversation(engine: Engine, workspace_id: int, conversation_id: int) -> dict[str, Any]:
    """One conversation of the workspace: transcript, lead and booking clicks; a
    conversation of another workspace is `NotFound`."""
    with session_scope(engine) as session:
        found = session.exec(
            select(Conversation, Bot.bot_id)
            .join(Bot, col(Conversation.bot_id) == col(Bot.id))
            .where(Conversation.id == conversation_id, Conversation.workspace_id == workspace_id)
        ).first()
        if found is None:
            raise NotFound("There is no such conversation in this workspace.")
        conversation, bot_id = found
        detail = _transcript(session, conversation, bot_id)
        clicks = session.exec(
            select(BookingEvent)
            .where(
                BookingEvent.conversation_id == conversation_id,
                BookingEvent.workspace_id == workspace_id,
            )
            .order_by(col(BookingEvent.id))
        ).all()
        detail["booking_clicks"] = [
            {
                "at": e.created_at.isoformat(),
                "handling": e.handling,
                "provider": e.provider,
                "url": e.url,
            }
            for e in clicks
        ]
        return detail


def _transcript(session: Session, conversation: Conversation, bot_id: str) -> dict[str, Any]:
    messages = session.exec(
        select(Message).where(Message.conversation_id == conversation.id).order_by(col(Message.id))
    ).all()
    lead = session.get(Lead, conversation.lead_id) if conversation.lead_id else None
    if lead is not None and lead.workspace_id != conversation.workspace_id:
        lead = None
    return {
        **_summary(conversation, bot_id),
        "lead": {
            "lead_id": lead.id,
            "name": lead.name,
            "phone": lead.phone,
            "email": lead.email,
            "status": lead.status,
            "booking_status": lead.booking_status,
            "service_requested": lead.service_requested,
        }
        if lead
        else None,
        "transcript": [
            {
                "at": m.created_at.isoformat(),
                "role": m.role,
                "source": m.source,
                "text": m.text,
                "latency_ms": m.latency_ms,
            }
            for m in messages
        ],
    }
