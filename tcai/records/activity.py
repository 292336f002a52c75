"""A workspace's activity at a glance: conversations and leads per day, leads by status.

Days are the workspace's own (its time zone), so a lead at 11 pm in Florida counts on
that Florida day. Every function takes the workspace's id; what it counts is only that
workspace's. Drawing the chart is the portal's job (`tcai/daemon/portal/chart.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from tcai.db.engine import session_scope
from tcai.db.models import LEAD_STATUSES, Conversation, Lead, Workspace
from tcai.db.types import utcnow
from tcai.errors import NotFound


@dataclass(frozen=True)
class DayCount:
    day: date
    conversations: int
    leads: int


def daily_activity(
    engine: Engine, workspace_id: int, *, days: int = 30, now: datetime | None = None
) -> list[DayCount]:
    """One row per day for the last `days` days, today last, zeros included."""
    now = now or utcnow()
    with session_scope(engine) as session:
        ws = session.get(Workspace, workspace_id)
        if ws is None:
            raise NotFound("There is nothing at this address.")
        zone = ZoneInfo(ws.timezone)
        today = now.astimezone(zone).date()
        first = today - timedelta(days=days - 1)
        start = datetime.combine(first, time(0, 0), zone)
        started = session.exec(
            select(Conversation.started_at).where(
                Conversation.workspace_id == workspace_id, col(Conversation.started_at) >= start
            )
        ).all()
        created = session.exec(
            select(Lead.created_at).where(
                Lead.workspace_id == workspace_id, col(Lead.created_at) >= start
            )
        ).all()
    conversations = _per_day(started, zone)
    leads = _per_day(created, zone)
    return [
        DayCount(day, conversations.get(day, 0), leads.get(day, 0))
        for day in (first + timedelta(days=offset) for offset in range(days))
    ]


def _per_day(moments: Sequence[datetime], zone: ZoneInfo) -> dict[date, int]:
    counts: dict[date, int] = {}
    for moment in moments:
        day = moment.astimezone(zone).date()
        counts[day] = counts.get(day, 0) + 1
    return counts


def lead_counts(engine: Engine, workspace_id: int) -> dict[str, int]:
    """How many of the workspace's leads are in each status (every status present)."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(Lead.status, sa.func.count())
            .where(Lead.workspace_id == workspace_id)
            .group_by(col(Lead.status))
        ).all()
    found = {status: int(n) for status, n in rows}
    return {status: found.get(status, 0) for status in LEAD_STATUSES}
