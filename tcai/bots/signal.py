"""The change signal: how every process learns a bot changed (docs/architecture.md).

A change bumps the `cache_signal` row that every process polls (cheap, SQLite and
PostgreSQL alike) and, on PostgreSQL, sends `NOTIFY tcai_bots` in the same transaction,
so both commit with the change. The chat engine's bot directory
(`tcai.chat.directory`) and the daemon's listener are the receiving end.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session

from tcai.db.engine import upsert_insert
from tcai.db.models import CacheSignal
from tcai.db.types import utcnow

NOTIFY_CHANNEL = "tcai_bots"
BOTS_SIGNAL = "bots"
FLUSH_ALL = "*"


def raise_signal(session: Session, bot_id: str | None = None) -> None:
    """Tell every process that a bot (or, with None, every bot) changed: bump the version
    they poll and, on PostgreSQL, NOTIFY the listeners. Both commit with the change."""
    insert = upsert_insert(session.get_bind().dialect.name)
    table = CacheSignal.__table__  # type: ignore[attr-defined]
    stmt = insert(table).values(name=BOTS_SIGNAL, version=1, updated_at=utcnow())
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={"version": table.c.version + 1, "updated_at": utcnow()},
        )
    )
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            sa.text("SELECT pg_notify(:channel, :payload)"),
            {"channel": NOTIFY_CHANNEL, "payload": bot_id or FLUSH_ALL},
        )
