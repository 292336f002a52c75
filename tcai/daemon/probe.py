"""The health route's database probe."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import sqlalchemy as sa

from tcai import __version__

_DOCUMENT = '{"status": "%s", "timestamp": "%s", "version": %s, "db": {"ok": %s, "latency_ms": %s}}'
_VERSION = json.dumps(__version__)


def _ping(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")


class DatabaseProbe:
    """The health route's database check: at most one probe per `interval`, shared by
    every request that arrives meanwhile, so a load balancer polling hard costs nothing.
    Each probe also writes the health document once (`document`): its timestamp is when
    the database was checked, at most `interval` ago."""

    def __init__(self, engine: sa.Engine, interval: float = 1.0) -> None:
        self.engine, self.interval = engine, interval
        self._last: tuple[float, bool, float] | None = None
        self._running: asyncio.Task[tuple[bool, float]] | None = None
        self.document = b""
        """The JSON body of `/api/health` for the last probe."""

    async def _probe(self) -> tuple[bool, float]:
        started = time.monotonic()
        try:
            async with asyncio.timeout(2.0):
                await asyncio.to_thread(_ping, self.engine)
            ok = True
        except Exception:
            ok = False
        latency = round((time.monotonic() - started) * 1000, 1)
        self._last = (time.monotonic(), ok, latency)
        self.document = (
            _DOCUMENT
            % (
                "ok" if ok else "degraded",
                datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                _VERSION,
                "true" if ok else "false",
                repr(float(latency)),  # a finite float's repr is its JSON
            )
        ).encode()
        return ok, latency

    async def check(self) -> tuple[bool, float]:
        if self._last is not None and time.monotonic() - self._last[0] < self.interval:
            return self._last[1], self._last[2]
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._probe())
        return await asyncio.shield(self._running)
