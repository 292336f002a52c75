"""The in-process moving windows behind the chat rate limits (tcai/daemon/ratelimit.py)."""

from __future__ import annotations

import threading

import pytest

from tcai.daemon import ratelimit
from tcai.daemon.ratelimit import Limit, MovingWindows, RateLimits


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


def test_a_window_admits_its_count_then_says_when_room_returns(clock: Clock) -> None:
    windows = MovingWindows(Limit.parse("3/minute"))
    for _ in range(3):
        assert windows.hit("k") is None
        clock.now += 5
    assert windows.hit("k") == pytest.approx(45.0)
    assert windows.hit("other") is None  # keys are independent
    clock.now += 45.001
    assert windows.hit("k") is None  # the first hit left the window
    assert windows.hit("k") is not None  # the other two are still in it


def test_refused_hits_do_not_count(clock: Clock) -> None:
    windows = MovingWindows(Limit(2, 10.0))
    windows.hit("k")
    windows.hit("k")
    for _ in range(100):
        clock.now += 0.01
        assert windows.hit("k") is not None
    clock.now += 10
    assert windows.hit("k") is None


def test_idle_keys_are_swept(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "SWEEP_EVERY", 10)
    windows = MovingWindows(Limit(5, 60.0))
    for visitor in range(9):
        windows.hit(f"visitor-{visitor}")
    assert len(windows) == 9
    clock.now += 61
    windows.hit("late")  # the tenth hit sweeps
    assert len(windows) == 1


def test_chat_limits_report_scope_and_retry_after(clock: Clock) -> None:
    limits = RateLimits("2/minute", "3/hour", "1/minute")
    assert limits.hit_chat("10.0.0.1", "bot") is None
    assert limits.hit_chat("10.0.0.1", "bot") is None
    refusal = limits.hit_chat("10.0.0.1", "bot")
    assert refusal is not None and (refusal.scope, refusal.retry_after) == ("visitor", 60)
    assert limits.hit_chat("10.0.0.2", "bot") is None  # a third visitor hit for the bot
    refusal = limits.hit_chat("10.0.0.3", "bot")
    assert refusal is not None and refusal.scope == "bot" and refusal.retry_after == 3600
    assert limits.hit_config("10.0.0.1") is None
    refusal = limits.hit_config("10.0.0.1")
    assert refusal is not None and refusal.scope == "config"


def test_no_thread_is_started() -> None:
    before = threading.active_count()
    limits = RateLimits()
    for n in range(2000):
        limits.hit_chat(f"10.0.{n % 250}.{n % 7}", "bot")
    assert threading.active_count() == before
