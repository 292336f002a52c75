"""Abuse without self-harm, over HTTP (docs/http-api.md, "Rate limits" and "Client
addresses and proxies"): limits slow the abuser, never switch the bot off for everyone;
the client address is the peer unless a trusted proxy names it; the portal's sign-in
throttle is shared through Redis by several daemons."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from pydantic import SecretStr

from tcai.daemon.app import create_app
from tcai.daemon.ratelimit import RateLimits, RedisWindows
from tests.conftest import provision
from tests.daemon.test_ratelimit import REDIS_URL, needs_redis
from tests.helpers import ALLOWED, CHAT_PATH, make_settings, token_for


@pytest.fixture
def site(seeded):
    provision(seeded, allowed_origins=[ALLOWED])
    return seeded


async def chat(client, token: str, message: str = "what are your hours?", **extra):
    body = {
        "message": message,
        **({"session_id": extra.pop("session")} if "session" in extra else {}),
    }
    headers = {"Origin": ALLOWED, "Authorization": f"Bearer {token}", **extra}
    return await client.post(CHAT_PATH, json=body, headers=headers)


async def make_client(site, aiohttp_client, tmp_path: Path, limits: RateLimits, **settings):
    engine = site.engine()
    app = create_app(
        make_settings(log_dir=tmp_path / "logs", **settings), engine=engine, rate_limits=limits
    )
    client = await aiohttp_client(app)
    client.dispose = engine.dispose
    return client


async def test_a_crowd_spending_the_bots_budget_gets_facts_not_a_429(
    site, aiohttp_client, tmp_path, stub_llm
) -> None:
    limits = RateLimits("30/minute", "3/minute", per_address="100/minute")
    client = await make_client(
        site,
        aiohttp_client,
        tmp_path,
        limits,
        openai_base_url=stub_llm.base_url,
        openai_api_key=SecretStr("test-key"),
    )
    token = await token_for(client)
    replies = []
    for n in range(9):
        response = await chat(client, token, session=f"s-crowd-{n:04d}")
        assert response.status == 200
        replies.append((await response.json())["source"])
    # Three from the budget, three from the reserve (this address is still light: at
    # most ten messages this minute), then the facts.
    assert replies[:6] == ["llm"] * 6
    assert all(source in ("faq", "failsafe") for source in replies[6:])
    assert len(stub_llm.requests) == 6  # and the LLM was not asked again
    metrics = await (await client.get("/metrics")).text()
    assert 'tcai_rate_limited_total{scope="bot"} 3.0' in metrics
    client.dispose()


async def test_one_address_inventing_sessions_is_slowed_alone(
    site, aiohttp_client, tmp_path
) -> None:
    limits = RateLimits("30/minute", "1000/minute", per_address="5/minute")
    client = await make_client(
        site, aiohttp_client, tmp_path, limits, trusted_proxies=("127.0.0.0/8",)
    )
    token = await token_for(client)
    abuser = {"X-Forwarded-For": "203.0.113.66"}
    statuses = [
        (await chat(client, token, session=f"s-fake-{n:04d}", **abuser)).status for n in range(8)
    ]
    assert statuses == [200] * 5 + [429] * 3
    refused = await chat(client, token, session="s-fake-9999", **abuser)
    body = await refused.json()
    assert body["error"]["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60  # never an hour
    # Everyone else is answered as before.
    for n in range(3):
        neighbour = {"X-Forwarded-For": f"198.51.100.{n + 1}"}
        assert (await chat(client, token, session=f"s-real-{n:04d}", **neighbour)).status == 200
    client.dispose()


async def test_forwarded_headers_count_only_from_a_trusted_proxy(
    site, aiohttp_client, tmp_path
) -> None:
    limits = RateLimits("2/minute", "1000/minute", per_address="1000/minute")
    client = await make_client(site, aiohttp_client, tmp_path, limits)  # no trusted proxy
    token = await token_for(client)
    # A visitor cannot pick a fresh address per message by writing the header themselves.
    statuses = [
        (
            await chat(client, token, session="s-spoofer1", **{"X-Forwarded-For": f"10.9.0.{n}"})
        ).status
        for n in range(3)
    ]
    assert statuses == [200, 200, 429]
    client.dispose()


async def test_the_access_log_names_the_forwarded_client(site, aiohttp_client, tmp_path) -> None:
    limits = RateLimits()
    client = await make_client(
        site, aiohttp_client, tmp_path, limits, trusted_proxies=("127.0.0.1/32",)
    )
    token = await token_for(client)
    forwarded = {"Forwarded": 'for="[2001:db8:cafe::17]:4711";proto=https'}
    assert (await chat(client, token, **forwarded)).status == 200
    assert (
        await chat(client, token, **{"X-Forwarded-For": "203.0.113.9, 127.0.0.1"})
    ).status == 200
    await client.close()
    lines = [
        json.loads(line)
        for line in (tmp_path / "logs" / "access.jsonl").read_text().splitlines()
        if '"route": "/api/chat' in line or '"/api/chat/' in line
    ]
    ips = [line["ip"] for line in lines if line.get("route", "").startswith("/api/chat")]
    assert ips[-2:] == ["2001:db8:cafe::", "203.0.113.0"]  # anonymised, as every log line
    client.dispose()


@needs_redis
async def test_sign_in_attempts_are_throttled_across_daemons_through_redis(
    site, aiohttp_client, tmp_path
) -> None:
    """Two daemons (two apps, each its own limits object, as two hosts would have) share
    one per-address sign-in window in Redis: 4 attempts in all, then 429 on both."""
    run = uuid.uuid4().hex  # an address of this run's own: Redis keeps windows 15 minutes
    address = f"2001:db8:{run[:4]}:{run[4:8]}::{run[8:12]}"
    clients, shared = [], []
    for name in ("a", "b"):
        limits = RateLimits(per_ip_login="4/15minute", windows=RedisWindows(REDIS_URL))
        shared.append(limits)
        clients.append(
            await make_client(
                site, aiohttp_client, tmp_path / name, limits, trusted_proxies=("127.0.0.0/8",)
            )
        )
    statuses: list[int] = []
    for n in range(6):
        client = clients[n % 2]
        response = await client.post(
            "/portal/login",
            data={"email": "nobody@example.com", "password": "x", "csrf": "x"},
            headers={"X-Forwarded-For": address},
            allow_redirects=False,
        )
        statuses.append(response.status)
    assert statuses[:4] != [429] * 4 and 429 not in statuses[:4]
    assert statuses[4:] == [429, 429]
    for client, limits in zip(clients, shared, strict=True):
        await limits.close()
        client.dispose()
