"""Reading the `system_log` table back for operators (`tcai logs system`).

Rows are written by `tcai.logs.SystemLogHandler` (errors and criticals of the `tcai.*`
loggers) and by the outbox when a delivery is dead-lettered; this module only reads
them, newest first. It does not write, rotate or purge them (retention does that).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from tcai.db.engine import session_scope
from tcai.db.models import LOG_LEVELS, SystemLog
from tcai.errors import UsageError
from tcai.records.leads import get_workspace


def levels_from(level: str) -> tuple[str, ...]:
    """`level` and every level more severe: `warning` → warning, error, critical."""
    wanted = level.strip().lower()
    if wanted not in LOG_LEVELS:
        raise UsageError(f"--level: '{level}' is not one of {', '.join(LOG_LEVELS)}")
    return LOG_LEVELS[LOG_LEVELS.index(wanted) :]


def list_system_log(
    engine: Engine,
    *,
    level: str | None = None,
    since: datetime | None = None,
    workspace: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """System log rows at `level` or above, newest first, at most `limit`."""
    levels = levels_from(level) if level else None
    with session_scope(engine, read_only=True) as session:
        query = (
            select(SystemLog)
            .order_by(col(SystemLog.at).desc(), col(SystemLog.id).desc())
            .limit(limit)
        )
        if levels is not None:
            query = query.where(col(SystemLog.level).in_(levels))
        if since is not None:
            query = query.where(col(SystemLog.at) >= since)
        if workspace:
            query = query.where(SystemLog.workspace_id == get_workspace(session, workspace).id)
        return [
            {
                "id": row.id,
                "at": row.at.isoformat(),
                "level": row.level,
                "source": row.source,
                "message": row.message,
                "details": row.details,
                "workspace_id": row.workspace_id,
            }
            for row in session.exec(query)
        ]
