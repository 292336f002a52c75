"""Chat rate limits (docs/http-api.md): per IP × bot (default 30/min) and per bot (500/hour).

Moving windows kept in this process: each key holds the times of its accepted hits (at
most the limit's count), so a check is a few list operations on the event loop — no
lock, no thread, no timer (the `limits` library's memory storage, used before, started a
timer thread every few milliseconds under load). Keys idle for their limit's window are
swept every `SWEEP_EVERY` hits, so memory stays bounded by the visitors of the last
minute (per visitor) or hour (per bot). With several workers or machines each process
counts on its own, which is approximate and enough for abuse control. The limit strings
("30/minute") are read by `tcai.config.parse_rate`, the parser that validates them in
the settings.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from tcai.config import parse_rate

SWEEP_EVERY = 4096


@dataclass(frozen=True)
class Refusal:
    scope: str
    retry_after: int


@dataclass(frozen=True)
class Limit:
    amount: int
    seconds: float

    @classmethod
    def parse(cls, text: str) -> Limit:
        amount, seconds = parse_rate(text)
        return cls(amount, seconds)


class MovingWindows:
    """Accepted hits per key within one limit's window; never blocks, never threads.

    A key keeps a short list of hit times (at most the limit's count); keys idle for a
    whole window are swept every `SWEEP_EVERY` hits, so a visitor's key goes a minute
    after their last message, not an hour."""

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self._hits: dict[tuple[str, ...], list[float]] = {}
        self._since_sweep = 0

    def hit(self, *key: str) -> float | None:
        """Count a hit when the window has room and return None; otherwise count
        nothing and return the seconds until the oldest hit leaves the window."""
        now = time.monotonic()
        window = self.limit.seconds
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = []
        elif hits[0] <= now - window:
            horizon = now - window
            del hits[: next((i for i, at in enumerate(hits) if at > horizon), len(hits))]
        if len(hits) >= self.limit.amount:
            return hits[0] + window - now
        hits.append(now)
        self._since_sweep += 1
        if self._since_sweep >= SWEEP_EVERY:
            self._sweep(now)
        return None

    def _sweep(self, now: float) -> None:
        self._since_sweep = 0
        horizon = now - self.limit.seconds
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= horizon]:
            del self._hits[key]

    def __len__(self) -> int:
        return len(self._hits)


class RateLimits:
    def __init__(
        self,
        per_visitor: str = "30/minute",
        per_bot: str = "500/hour",
        per_ip_config: str = "120/minute",
    ) -> None:
        self.per_visitor = MovingWindows(Limit.parse(per_visitor))
        self.per_bot = MovingWindows(Limit.parse(per_bot))
        self.per_ip_config = MovingWindows(Limit.parse(per_ip_config))

    @staticmethod
    def _check(scope: str, windows: MovingWindows, *key: str) -> Refusal | None:
        wait = windows.hit(*key)
        return None if wait is None else Refusal(scope, max(1, math.ceil(wait)))

    def hit_chat(self, ip: str, bot_id: str) -> Refusal | None:
        return self._check("visitor", self.per_visitor, ip, bot_id) or self._check(
            "bot", self.per_bot, bot_id
        )

    def hit_config(self, ip: str) -> Refusal | None:
        return self._check("config", self.per_ip_config, ip)
