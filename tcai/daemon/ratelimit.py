"""The daemon's rate limits (docs/http-api.md, "Rate limits"): limits that slow an abuser,
never the business.

Four moving windows, each with its own key:

| scope | key | default | over it |
|---|---|---|---|
| visitor | client address + session + bot | `CHAT_RATE_LIMIT` 30/minute | 429 to that visitor |
| address | client address + bot | `CHAT_ADDRESS_RATE_LIMIT` 60/minute | 429 to that address |
| bot | bot | `CHAT_BOT_RATE_LIMIT` 120/minute | the reserve, then answered from facts |
| reserve | bot | as much again, for light addresses | answered from facts, no LLM |
| config | client address | 120/minute | 429 (widget config) |
| login | client address | 30 per 15 minutes | 429 (portal login form) |

The bot's window is a budget, not a door: when it is spent the turn is still answered,
from the business's facts without the LLM, so no crowd of addresses can make a bot say
"too many requests" to everyone (and the LLM bill stays bounded). A reserve as large as
the budget is kept for light addresses (at most `LIGHT_MESSAGES` messages in their
address window): a flood spends the shared budget, never the reserve, so the business's
real visitors keep getting the LLM's answers while it lasts. Every refusal's
Retry-After is at most its window (a minute for chat), never an hour.

A chat message hits its address window before its body is read (`hit_address`), then,
once its session is known, the visitor's and the bot's in one step (`hit_chat`); a full
window records nothing further, so a refused message never spends the bot's budget.

Where the counts live: in this process (`MemoryWindows`: a short list of hit times per
key, swept as keys go idle; no lock, no thread, no timer), or, when `REDIS_URL` is set,
in Redis (`RedisWindows`: one Lua script per step, on Redis's own clock, so every process
and host shares one count). If Redis stops answering, the process falls back to its own
windows and says so in the log once a minute: a limit store is never a reason to refuse a
visitor. The limit strings ("30/minute") are read by `tcai.config.parse_rate`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tcai.config import Settings, parse_rate

SWEEP_EVERY = 4096
REDIS_TIMEOUT_S = 0.25
"""A limit check waits this long for Redis before this process counts on its own."""
REDIS_RETRY_S = 5.0
"""After a Redis failure, this process counts on its own for this long before retrying."""
KEY_PREFIX = "tcai:rl:"
LIGHT_MESSAGES = 10
"""An address that sent at most this many messages to a bot in its address window (a
minute by default) may use the bot's reserve once the shared budget is spent."""
log = logging.getLogger("tcai.daemon")


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


@dataclass(frozen=True)
class Step:
    """One window to hit: its scope (the name in metrics and docs), limit and key."""

    scope: str
    limit: Limit
    key: str
    record: bool = True
    """False: only look (is there room?) and count nothing, e.g. how busy an address is."""


@dataclass(frozen=True)
class ChatVerdict:
    refusal: Refusal | None = None
    """Set: answer 429 with this scope and Retry-After."""
    bot_budget_spent: bool = False
    """The bot's window and its reserve are spent: answer from facts, without the LLM."""
    from_reserve: bool = False
    """The bot's window is spent and this light visitor was let through on the reserve."""


class Windows(Protocol):
    async def hit(self, steps: Sequence[Step]) -> tuple[int, float] | None:
        """Hit each step's window in order. The first full window stops the walk: its
        index and the seconds until it has room come back; the steps before it have
        recorded the hit, it and the steps after it record nothing. None: every window
        had room and recorded the hit (a step with `record=False` only looks)."""

    async def close(self) -> None: ...


class MemoryWindows:
    """This process's windows: each key holds the times of its accepted hits (at most
    the limit's count); keys idle for their whole window are swept every `SWEEP_EVERY`
    hits, so memory stays bounded by the visitors of the last window."""

    def __init__(self) -> None:
        self._hits: dict[str, tuple[float, list[float]]] = {}
        self._since_sweep = 0

    def hit_now(self, steps: Sequence[Step], now: float | None = None) -> tuple[int, float] | None:
        now = time.monotonic() if now is None else now
        for index, step in enumerate(steps):
            window = step.limit.seconds
            entry = self._hits.get(step.key)
            if entry is None:
                entry = self._hits[step.key] = (window, [])
            hits = entry[1]
            if hits and hits[0] <= now - window:
                horizon = now - window
                del hits[: next((i for i, at in enumerate(hits) if at > horizon), len(hits))]
            if len(hits) >= step.limit.amount:
                return index, hits[-step.limit.amount] + window - now
            if step.record:
                hits.append(now)
        self._since_sweep += 1
        if self._since_sweep >= SWEEP_EVERY:
            self._sweep(now)
        return None

    async def hit(self, steps: Sequence[Step]) -> tuple[int, float] | None:
        return self.hit_now(steps)

    def _sweep(self, now: float) -> None:
        self._since_sweep = 0
        idle = [
            key
            for key, (window, hits) in self._hits.items()
            if not hits or hits[-1] <= now - window
        ]
        for key in idle:
            del self._hits[key]

    def __len__(self) -> int:
        return len(self._hits)

    async def close(self) -> None:
        return None


# KEYS: one sorted set per step. ARGV: a unique member, then (amount, window ms, record)
# per step. The same walk as `MemoryWindows.hit_now`, on Redis's clock, not the caller's:
# hosts whose clocks differ still share one window.
_HIT_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function record(upto)
  for j = 1, upto do
    if ARGV[j * 3 + 1] == '1' then
      redis.call('ZADD', KEYS[j], now, ARGV[1])
      redis.call('PEXPIRE', KEYS[j], tonumber(ARGV[j * 3]))
    end
  end
end
for i, key in ipairs(KEYS) do
  local amount = tonumber(ARGV[i * 3 - 1])
  local window = tonumber(ARGV[i * 3])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count >= amount then
    local oldest = redis.call('ZRANGE', key, count - amount, count - amount, 'WITHSCORES')
    record(i - 1)
    return {i, tonumber(oldest[2]) + window - now}
  end
end
record(#KEYS)
return {0, 0}
"""


class RedisWindows:
    """Windows shared through Redis by every process and host (one round trip a step)."""

    def __init__(self, url: str, fallback: MemoryWindows | None = None) -> None:
        import redis.asyncio as aioredis  # only when REDIS_URL is set

        self.url = url
        self._client: Any = aioredis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            health_check_interval=30,
        )
        self._script: Any = self._client.register_script(_HIT_SCRIPT)
        self.fallback = fallback or MemoryWindows()
        self._members = itertools.count()
        self._prefix = f"{os.getpid()}-{time.monotonic_ns()}-"
        self._down_until = 0.0
        self._last_warning = 0.0
        self.failures = 0

    async def hit(self, steps: Sequence[Step]) -> tuple[int, float] | None:
        if time.monotonic() < self._down_until:
            return self.fallback.hit_now(steps)
        args: list[Any] = [f"{self._prefix}{next(self._members)}"]
        for step in steps:
            args += [step.limit.amount, int(step.limit.seconds * 1000), int(step.record)]
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S * 2):
                index, wait_ms = await self._script(
                    keys=[KEY_PREFIX + step.key for step in steps], args=args
                )
        except Exception as exc:  # any Redis trouble: count here, never refuse for it
            self._unavailable(exc)
            return self.fallback.hit_now(steps)
        if int(index) == 0:
            return None
        return int(index) - 1, max(0.0, float(wait_ms) / 1000)

    def _unavailable(self, exc: BaseException) -> None:
        self.failures += 1
        now = time.monotonic()
        self._down_until = now + REDIS_RETRY_S
        if now - self._last_warning >= 60:
            self._last_warning = now
            log.warning(
                "rate limits: Redis did not answer (%s); this process counts on its own "
                "for now and retries in %.0f s",
                type(exc).__name__,
                REDIS_RETRY_S,
            )

    async def close(self) -> None:
        await self._client.aclose()


class RateLimits:
    """The daemon's limits over one store of windows (in-process or Redis)."""

    def __init__(
        self,
        per_visitor: str = "30/minute",
        per_bot: str = "120/minute",
        per_ip_config: str = "120/minute",
        *,
        per_address: str = "60/minute",
        per_ip_login: str = "30/15minute",
        windows: Windows | None = None,
    ) -> None:
        self.visitor = Limit.parse(per_visitor)
        self.address = Limit.parse(per_address)
        self.bot = Limit.parse(per_bot)
        self.config = Limit.parse(per_ip_config)
        self.login = Limit.parse(per_ip_login)
        self.windows: Windows = windows or MemoryWindows()

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        windows: Windows | None = None
        if settings.redis_url:
            windows = RedisWindows(settings.redis_url)
        return cls(
            settings.chat_rate_limit,
            settings.chat_bot_rate_limit,
            per_address=settings.chat_address_rate_limit,
            windows=windows,
        )

    @property
    def shared(self) -> bool:
        return isinstance(self.windows, RedisWindows)

    async def _walk(self, steps: Sequence[Step]) -> tuple[int, Refusal] | None:
        found = await self.windows.hit(steps)
        if found is None:
            return None
        index, wait = found
        return index, Refusal(steps[index].scope, max(1, math.ceil(wait)))

    async def hit_address(self, ip: str, bot_id: str) -> Refusal | None:
        """A chat message or booking click from this address, before its body is read."""
        found = await self._walk((Step("address", self.address, f"a|{bot_id}|{ip}"),))
        return None if found is None else found[1]

    async def hit_chat(self, ip: str, bot_id: str, session_id: str | None) -> ChatVerdict:
        """A chat message, once its session is known: the visitor, then the bot."""
        steps = (
            Step("visitor", self.visitor, f"v|{bot_id}|{ip}|{session_id or ''}"),
            Step("bot", self.bot, f"b|{bot_id}"),
        )
        found = await self._walk(steps)
        if found is None:
            return ChatVerdict()
        index, refusal = found
        if index == 0:
            return ChatVerdict(refusal=refusal)
        # The shared budget is spent. The reserve, as large again, is kept for addresses
        # that sent at most `LIGHT_MESSAGES` messages in their address window: a crowd
        # flooding the bot cannot spend it, the business's real visitors can.
        light = Limit(LIGHT_MESSAGES + 1, self.address.seconds)  # this message included
        reserve = (
            Step("light", light, f"a|{bot_id}|{ip}", record=False),
            Step("reserve", self.bot, f"r|{bot_id}"),
        )
        if await self._walk(reserve) is None:
            return ChatVerdict(from_reserve=True)
        return ChatVerdict(bot_budget_spent=True)

    async def hit_config(self, ip: str) -> Refusal | None:
        found = await self._walk((Step("config", self.config, f"c|{ip}"),))
        return None if found is None else found[1]

    async def hit_login(self, ip: str) -> Refusal | None:
        found = await self._walk((Step("login", self.login, f"l|{ip}"),))
        return None if found is None else found[1]

    async def close(self) -> None:
        await self.windows.close()
