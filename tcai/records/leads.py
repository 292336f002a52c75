"""Leads for operators: list and export (CSV safe for spreadsheets, or JSON).

CSV cells that a spreadsheet would read as a formula (starting with = + - @, a tab or a
carriage return) are prefixed with an apostrophe. Importing the spool the chat engine
writes when the database refused a turn is `tcai.chat.recovery`'s job.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from tcai.db.engine import session_scope
from tcai.db.models import (
    LEAD_STATUSES,
    Bot,
    Lead,
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
