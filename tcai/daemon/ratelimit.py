"""Chat rate limits (docs/http-api.md): per IP × bot (default 30/min) and per bot (500/hour).

Moving windows kept in this process: each key holds the times of its accepted hits (at
most the limit's count), so a check is a few deque operations on the event loop — no
lock, no thread, no timer (the `limits` library's memory storage, used before, started a
timer thread every few milliseconds under load). Keys idle longer than the longest
window are swept every `SWEEP_EVERY` hits, so memory stays bounded by the visitors of
the last hour. With several workers or machines each process counts on its own, which
is approximate and enough for abuse control. The limit strings ("30/minute") are read by
`tcai.config.parse_rate`, the parser that validates them in the settings.
"""

from __future__ import annotations

import math
import time
from collections import deque
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
    """Accepted hits per key within each key's window; never blocks, never threads."""

    def __init__(self) -> None:
        self._hits: dict[tuple[str, ...], deque[float]] = {}
        self._longest = 0.0
        self._since_sweep = 0

    def hit(self, limit: Limit, *key: str) -> float | None:
        """Count a hit when the window has room and return None; otherwise count
        nothing and return the seconds until the oldest hit leaves the window."""
        now = time.monotonic()
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
        horizon = now - limit.seconds
        while hits and hits[0] <= horizon:
            hits.popleft()
        if len(hits) >= limit.amount:
            return hits[0] + limit.seconds - now
        hits.append(now)
        self._longest = max(self._longest, limit.seconds)
        self._since_sweep += 1
        if self._since_sweep >= SWEEP_EVERY:
            self._sweep(now)
        return None

    def _sweep(self, now: float) -> None:
        self._since_sweep = 0
        horizon = now - self._longest
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
        self._windows = MovingWindows()
        self.per_visitor = Limit.parse(per_visitor)
        self.per_bot = Limit.parse(per_bot)
        self.per_ip_config = Limit.parse(per_ip_config)

    def _check(self, scope: str, limit: Limit, *key: str) -> Refusal | None:
        wait = self._windows.hit(limit, *key)
        return None if wait is None else Refusal(scope, max(1, math.ceil(wait)))

    def hit_chat(self, ip: str, bot_id: str) -> Refusal | None:
        return self._check("visitor", self.per_visitor, "chat-ip", ip, bot_id) or self._check(
            "bot", self.per_bot, "chat-bot", bot_id
        )

    def hit_config(self, ip: str) -> Refusal | None:
        return self._check("config", self.per_ip_config, "config-ip", ip)
