"""Chat rate limits (docs/http-api.md): per IP × bot (default 30/min) and per bot (500/hour).

In-process moving windows from the `limits` library: with several workers or machines
each process counts on its own, which is approximate and enough for abuse control (a
Redis storage can replace MemoryStorage without touching callers)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


@dataclass(frozen=True)
class Refusal:
    scope: str
    retry_after: int


class RateLimits:
    def __init__(
        self,
        per_visitor: str = "30/minute",
        per_bot: str = "500/hour",
        per_ip_config: str = "120/minute",
    ) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self.per_visitor: RateLimitItem = parse(per_visitor)
        self.per_bot: RateLimitItem = parse(per_bot)
        self.per_ip_config: RateLimitItem = parse(per_ip_config)

    def _retry_after(self, item: RateLimitItem, *keys: str) -> int:
        reset, _remaining = self._limiter.get_window_stats(item, *keys)
        return max(1, math.ceil(reset - time.time()))

    def hit_chat(self, ip: str, bot_id: str) -> Refusal | None:
        if not self._limiter.hit(self.per_visitor, "chat-ip", ip, bot_id):
            return Refusal("visitor", self._retry_after(self.per_visitor, "chat-ip", ip, bot_id))
        if not self._limiter.hit(self.per_bot, "chat-bot", bot_id):
            return Refusal("bot", self._retry_after(self.per_bot, "chat-bot", bot_id))
        return None

    def hit_config(self, ip: str) -> Refusal | None:
        if not self._limiter.hit(self.per_ip_config, "config-ip", ip):
            return Refusal("config", self._retry_after(self.per_ip_config, "config-ip", ip))
        return None
