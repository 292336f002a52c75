"""The daemon's rate limits (tcai/daemon/ratelimit.py): in-process windows and the same
windows shared through the machine's real Redis (127.0.0.1:6379)."""

from __future__ import annotations

import socket
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from tcai.daemon import ratelimit
from tcai.daemon.ratelimit import Limit, MemoryWindows, RateLimits, RedisWindows, Step
from tests.helpers import STRICT

REDIS_URL = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(ratelimit.time, "monotonic", fake)
    return fake


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


needs_redis = pytest.mark.skipif(
    not STRICT and not _redis_up(), reason="no Redis at 127.0.0.1:6379"
)
"""Under .ci/run (STRICT) these run whatever happens: a Redis that is down fails them."""


def steps(*pairs: tuple[str, str]) -> list[Step]:
    return [Step(key, Limit.parse(rate), key) for key, rate in pairs]


def test_a_window_admits_its_count_then_says_when_room_returns(clock: Clock) -> None:
    windows = MemoryWindows()
    three = steps(("k", "3/minute"))
    for _ in range(3):
        assert windows.hit_now(three) is None
        clock.now += 5
    assert windows.hit_now(three) == (0, pytest.approx(45.0))
    assert windows.hit_now(steps(("other", "3/minute"))) is None  # keys are independent
    clock.now += 45.001
    assert windows.hit_now(three) is None  # the first hit left the window
    assert windows.hit_now(three) is not None  # the other two are still in it


def test_a_full_step_records_nothing_after_it(clock: Clock) -> None:
    windows = MemoryWindows()
    walk = steps(("visitor", "1/minute"), ("bot", "5/minute"))
    assert windows.hit_now(walk) is None
    for _ in range(10):
        assert windows.hit_now(walk) == (0, pytest.approx(60.0))
    # The bot's window saw only the accepted hit: four more visitors fit in it.
    for n in range(4):
        assert windows.hit_now(steps((f"v{n}", "1/minute"), ("bot", "5/minute"))) is None
    assert windows.hit_now(steps(("v9", "1/minute"), ("bot", "5/minute")))[0] == 1  # type: ignore[index]


def test_idle_keys_are_swept(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "SWEEP_EVERY", 10)
    windows = MemoryWindows()
    for visitor in range(9):
        windows.hit_now(steps((f"visitor-{visitor}", "5/minute")))
    assert len(windows) == 9
    clock.now += 61
    windows.hit_now(steps(("late", "5/minute")))  # the tenth hit sweeps
    assert len(windows) == 1


async def test_chat_limits_slow_the_abuser_and_never_refuse_for_the_bot(clock: Clock) -> None:
    limits = RateLimits("2/minute", "3/minute", "1/minute", per_address="4/minute")
    # One visitor (address + session): two messages, then 429 for at most a minute.
    assert (await limits.hit_chat("10.0.0.1", "bot", "s-one")).refusal is None
    assert (await limits.hit_chat("10.0.0.1", "bot", "s-one")).refusal is None
    verdict = await limits.hit_chat("10.0.0.1", "bot", "s-one")
    assert verdict.refusal is not None
    assert (verdict.refusal.scope, verdict.refusal.retry_after) == ("visitor", 60)
    # The bot's budget (3/minute) is spent by a third accepted message; a light address
    # then draws on the reserve (as large again), and after that, facts mode.
    assert (await limits.hit_chat("10.0.0.2", "bot", "s-two")) == ratelimit.ChatVerdict()
    for n in range(3):
        verdict = await limits.hit_chat(f"10.0.1.{n}", "bot", "s-light")
        assert verdict.from_reserve and not verdict.bot_budget_spent
    spent = await limits.hit_chat("10.0.0.3", "bot", "s-three")
    assert spent.refusal is None and spent.bot_budget_spent
    # The address window, checked before a body is read, refuses the fifth message.
    for _ in range(4):
        assert await limits.hit_address("10.0.0.9", "bot") is None
    refusal = await limits.hit_address("10.0.0.9", "bot")
    assert refusal is not None and refusal.scope == "address" and refusal.retry_after <= 60
    assert await limits.hit_address("10.0.0.9", "other-bot") is None  # per bot
    assert await limits.hit_config("10.0.0.1") is None
    refusal = await limits.hit_config("10.0.0.1")
    assert refusal is not None and refusal.scope == "config"


async def test_a_flood_cannot_spend_the_reserve_kept_for_light_visitors(clock: Clock) -> None:
    """One address floods at a message a second for two minutes; a real visitor writing
    in the second minute still gets the LLM from the reserve (the flood, heavy after its
    first ten messages, can spend only the shared budget)."""
    limits = RateLimits("100/minute", "5/minute", per_address="60/minute")
    flood = Counter[str]()
    for second in range(120):
        clock.now = 1000.0 + second
        if await limits.hit_address("203.0.113.66", "bot") is not None:
            flood["429"] += 1
            continue
        verdict = await limits.hit_chat("203.0.113.66", "bot", f"s-{second:04d}")
        flood[
            "reserve" if verdict.from_reserve else "facts" if verdict.bot_budget_spent else "llm"
        ] += 1
        if second == 90:
            assert await limits.hit_address("198.51.100.7", "bot") is None
            visitor = await limits.hit_chat("198.51.100.7", "bot", "s-real-visitor")
            assert visitor.from_reserve, visitor
    # The flood got the reserve only while it was light (its first ten messages).
    assert flood["reserve"] == 5 and flood["llm"] == 10
    assert flood["facts"] > 90


async def test_login_attempts_per_address() -> None:
    limits = RateLimits()
    for _ in range(30):
        assert await limits.hit_login("10.1.1.1") is None
    refusal = await limits.hit_login("10.1.1.1")
    assert refusal is not None and refusal.scope == "login" and refusal.retry_after <= 900
    assert await limits.hit_login("10.1.1.2") is None


async def test_no_thread_is_started() -> None:
    before = threading.active_count()
    limits = RateLimits()
    for n in range(2000):
        await limits.hit_chat(f"10.0.{n % 250}.{n % 7}", "bot", None)
    assert threading.active_count() == before


# ---- shared through Redis ----------------------------------------------------------------


@pytest.fixture
async def shared_pair() -> AsyncIterator[tuple[RateLimits, RateLimits, str]]:
    """Two daemons' limits (as two processes would build them) on the same Redis."""
    bot = f"bot-{uuid.uuid4().hex[:12]}"  # keys of their own: tests may run at once
    first = RateLimits("3/minute", "5/minute", windows=RedisWindows(REDIS_URL))
    second = RateLimits("3/minute", "5/minute", windows=RedisWindows(REDIS_URL))
    yield first, second, bot
    await first.close()
    await second.close()


@needs_redis
async def test_two_processes_share_one_count_through_redis(
    shared_pair: tuple[RateLimits, RateLimits, str],
) -> None:
    first, second, bot = shared_pair
    assert first.shared and second.shared
    verdicts = [
        await (first if n % 2 else second).hit_chat("10.2.0.1", bot, "s-shared") for n in range(4)
    ]
    assert [v.refusal is None for v in verdicts] == [True, True, True, False]
    assert verdicts[3].refusal is not None and verdicts[3].refusal.scope == "visitor"
    assert 1 <= verdicts[3].refusal.retry_after <= 60
    # The bot's budget (5/minute) holds across both: three accepted so far, two more fit.
    assert not (await first.hit_chat("10.2.0.2", bot, "s-a")).bot_budget_spent
    assert not (await second.hit_chat("10.2.0.3", bot, "s-b")).bot_budget_spent
    # Then the reserve (5 more, light addresses only), shared too; then facts.
    for n in range(5):
        limits = first if n % 2 else second
        assert (await limits.hit_chat(f"10.2.1.{n}", bot, "s-c")).from_reserve
    assert (await first.hit_chat("10.2.0.4", bot, "s-c")).bot_budget_spent
    assert (await second.hit_chat("10.2.0.5", bot, "s-d")).bot_budget_spent
    assert first.windows.failures == second.windows.failures == 0  # type: ignore[attr-defined]


@needs_redis
async def test_a_refused_step_spends_nothing_in_redis(
    shared_pair: tuple[RateLimits, RateLimits, str],
) -> None:
    first, _second, bot = shared_pair
    for _ in range(3):
        await first.hit_chat("10.3.0.1", bot, "s-loud")
    for _ in range(20):  # refused by the visitor window: the bot's budget is untouched
        assert (await first.hit_chat("10.3.0.1", bot, "s-loud")).refusal is not None
    for n in range(2):
        assert not (await first.hit_chat(f"10.3.1.{n}", bot, f"s-{n}")).bot_budget_spent


@needs_redis
async def test_redis_walks_like_memory(shared_pair: tuple[RateLimits, RateLimits, str]) -> None:
    """The same steps give the same answers in Redis and in memory: earlier steps record,
    the full one and those after it do not, a look-only step never records."""
    first, _second, bot = shared_pair
    memory = MemoryWindows()
    walks = [
        steps((f"{bot}-a", "3/minute"), (f"{bot}-b", "2/minute")),
        steps((f"{bot}-a", "3/minute")),
        [Step("peek", Limit(2, 60.0), f"{bot}-b", record=False), *steps((f"{bot}-c", "9/minute"))],
    ]
    seen_redis, seen_memory = [], []
    for walk in [walks[0]] * 3 + [walks[1]] * 2 + [walks[2]] * 2:
        found = await first.windows.hit(walk)
        seen_redis.append(None if found is None else found[0])
        found = memory.hit_now(walk)
        seen_memory.append(None if found is None else found[0])
    assert seen_redis == seen_memory == [None, None, 1, 0, 0, 0, 0]


async def test_redis_down_falls_back_to_this_process(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    windows = RedisWindows(f"redis://127.0.0.1:{port}/0")
    limits = RateLimits("2/minute", windows=windows)
    results = [await limits.hit_chat("10.4.0.1", "bot", "s-x") for _ in range(3)]
    assert [r.refusal is None for r in results] == [True, True, False]
    assert windows.failures == 1  # one failure, then this process counts alone for a while
    assert "Redis did not answer" in caplog.text
    await limits.close()
