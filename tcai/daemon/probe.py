"""The health route's database probe."""

from __future__ import annotations

import asyncio
import time

import sqlalchemy as sa


def _ping(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")


class DatabaseProbe:
    """The health route's database check: at most one probe per `interval`, shared by
    every request that arrives meanwhile, so a load balancer polling hard costs nothing."""

    def __init__(self, engine: sa.Engine, interval: float = 1.0) -> None:
        self.engine, self.interval = engine, interval
        self._last: tuple[float, bool, float] | None = None
        self._running: asyncio.Task[tuple[bool, float]] | None = None

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
        return ok, latency

    async def check(self) -> tuple[bool, float]:
        if self._last is not None and time.monotonic() - self._last[0] < self.interval:
            return self._last[1], self._last[2]
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(self._probe())
        return await asyncio.shield(self._running)
