"""PostgreSQL LISTEN for bot changes: evict at once, flush on every (re)connect.

One dedicated autocommit connection per process, outside the pool (LISTEN does not work
through a transaction-pooling proxy). Notifications sent while it was not listening are
lost, so each (re)connect flushes the whole cache; the version check and the TTL in
`BotDirectory` remain as backstops. Reconnects back off from 0.5 s to 5 s.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.engine import Engine

from tcai.bots.signal import NOTIFY_CHANNEL
from tcai.chat.directory import BotDirectory

log = logging.getLogger("tcai.daemon.listener")


def conninfo(engine: Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


async def listen_for_changes(
    engine: Engine, directory: BotDirectory, ready: asyncio.Event | None = None
) -> None:
    import psycopg  # here, not at the top: a daemon on SQLite never loads the driver

    delay = 0.5
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                conninfo(engine), autocommit=True
            ) as conn:
                await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                directory.invalidate()
                delay = 0.5
                if ready is not None:
                    ready.set()
                async for notice in conn.notifies():
                    directory.invalidate(notice.payload or None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database restarted, the network blipped…
            log.warning(
                "bot-change listener lost its connection (%s); retrying", type(exc).__name__
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
