"""Benchmark the daemon against a bare aiohttp baseline measured in the same run.

Measures (the bars in the README's Benchmarks), each printed with its ratio or bound:
1. GET /api/health requests/s vs a bare aiohttp JSON handler (target ≥ 80 %);
2. chat turns/s with a stub LLM that answers instantly, one worker (target ≥ 300/s);
3. chat latency with a stub LLM that answers in 1 s, many concurrent visitors
   (target p99 ≤ 1.15 s, i.e. ≤ 150 ms of daemon overhead), and no errors;
4. with a stub LLM that hangs: every visitor gets the failsafe answer in under 5 s and
   every phone number given is stored;
5. the daemon's resident memory after N chat messages (target < 150 MB).

The load generator is an asyncio client in this process; the daemon runs as a real
`tcai serve` process on 127.0.0.1 with its own SQLite file (or DATABASE_URL if set).
Both share this machine's cores, so read the ratios, not the absolute figures.
Usage: python bench/daemon_bench.py [--seconds 5] [--concurrency 50] [--visitors 200]
       [--messages 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from served import ORIGIN, Daemon, free_port

from tcai.config import new_secret
from tcai.quality.stub_llm import StubLLM


async def hammer(
    url: str,
    seconds: float,
    concurrency: int,
    *,
    method: str = "GET",
    make_body=None,
    headers: dict[str, str] | None = None,
) -> tuple[float, list[float], int]:
    """Closed-loop load: returns (requests/s, latencies, errors)."""
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=30)
    ) as client:

        async def worker(index: int) -> None:
            nonlocal errors
            n = 0
            while time.monotonic() < deadline:
                n += 1
                started = time.monotonic()
                try:
                    body = make_body(index, n) if make_body else None
                    async with client.request(method, url, json=body, headers=headers) as response:
                        await response.read()
                        if response.status >= 400:
                            errors += 1
                except (TimeoutError, aiohttp.ClientError):
                    errors += 1
                latencies.append(time.monotonic() - started)

        started = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.monotonic() - started
    return len(latencies) / elapsed, latencies, errors


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


async def bare_baseline(seconds: float, concurrency: int) -> float:
    async def handler(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        rate, _lat, _err = await hammer(f"http://127.0.0.1:{port}/", seconds, concurrency)
    finally:
        await runner.cleanup()
    return rate


def run(cmd: list[str], env: dict[str, str]) -> None:
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--visitors", type=int, default=200)
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tcai-bench-"))
    env = {
        **os.environ,
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{work / 'bench.db'}"),
        "WIDGET_SECRET": new_secret(),
        "LOG_DIR": str(work / "logs"),
        # Every request comes from 127.0.0.1: lift the per-visitor and per-bot limits.
        "CHAT_RATE_LIMIT": "1000000/minute",
        "CHAT_BOT_RATE_LIMIT": "1000000/minute",
    }
    env.pop("OPENAI_API_KEY", None)
    tcai = [sys.executable, "-m", "tcai"]
    run([*tcai, "db", "upgrade"], env)
    run([*tcai, "templates", "seed"], env)
    run(
        [
            *tcai,
            "clients",
            "create",
            "--template",
            "barber",
            "--slug",
            "bench",
            "--name",
            "Bench Barber",
            "--phone",
            "772-555-0100",
            "--plan",
            "enterprise",
        ],
        env,
    )
    print(
        f"database: {env['DATABASE_URL'].split('://')[0]}, load: {args.concurrency} connections, "
        f"{args.seconds:.0f} s per phase; client and daemon share this machine"
    )

    baseline = await bare_baseline(args.seconds, args.concurrency)
    async with Daemon(env) as daemon:
        health, _lat, errors = await hammer(
            daemon.base + "/api/health", args.seconds, args.concurrency
        )
    print(
        f"1. bare aiohttp JSON: {baseline:,.0f} req/s; /api/health: {health:,.0f} req/s "
        f"= {health / baseline:.0%} of baseline (target ≥ 80%), errors {errors}"
    )

    async with StubLLM(reply="Sure, happy to help.") as stub:
        llm_env = {**env, "OPENAI_API_KEY": "bench-key", "OPENAI_BASE_URL": stub.base_url}
        async with Daemon(llm_env) as daemon:
            token = await daemon.token()
            headers = {"Origin": ORIGIN, "Authorization": f"Bearer {token}"}
            url = f"{daemon.base}/api/chat/bench/bench_main"

            # One session per worker keeps the per-visitor rate limit out of the measurement.
            def body(i: int, n: int) -> dict[str, str]:
                return {
                    "message": f"question {n} about fades",
                    "session_id": f"bench-visitor-{i:04d}",
                }

            turns, lat, errors = await hammer(
                url, args.seconds, args.concurrency, method="POST", make_body=body, headers=headers
            )
            print(
                f"2. chat with an instant stub LLM: {turns:,.0f} turns/s (target ≥ 300), "
                f"p50 {pct(lat, 50) * 1000:.0f} ms, p99 {pct(lat, 99) * 1000:.0f} ms, errors {errors}"
            )

            stub.delay_s = 1.0
            results: list[float] = []

            async def visitor(i: int, client: aiohttp.ClientSession) -> None:
                started = time.monotonic()
                async with client.post(
                    url,
                    json={"message": "hi", "session_id": f"slow-visitor-{i:04d}"},
                    headers=headers,
                ) as response:
                    await response.read()
                    if response.status == 200:
                        results.append(time.monotonic() - started)

            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as client:
                await asyncio.gather(*(visitor(i, client) for i in range(args.visitors)))
            print(
                f"3. {args.visitors} concurrent visitors, LLM answers in 1 s: p50 {pct(results, 50):.3f} s, "
                f"p99 {pct(results, 99):.3f} s (target ≤ 1.15 s), errors {args.visitors - len(results)}"
            )

            stub.mode = "stall"
            hung: list[tuple[float, str]] = []

            async def caller(i: int, client: aiohttp.ClientSession) -> None:
                started = time.monotonic()
                async with client.post(
                    url,
                    json={
                        "message": f"call me at 772-555-{1000 + i:04d}",
                        "session_id": f"hung-visitor-{i:04d}",
                    },
                    headers=headers,
                ) as r:
                    hung.append((time.monotonic() - started, (await r.json()).get("source", "?")))

            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as client:
                await asyncio.gather(*(caller(i, client) for i in range(50)))
            worst = max(t for t, _ in hung)
            sources = {s for _, s in hung}
            print(
                f"4. LLM hangs, 50 visitors: slowest answer {worst:.2f} s (target < 5 s), sources {sources}"
            )

            stub.mode, stub.delay_s = "answer", 0.0
            assert daemon.process is not None
            before = rss_mb(daemon.process.pid)
            sent = 0
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=50)) as client:

                async def talk(i: int) -> None:
                    nonlocal sent
                    for n in range(args.messages // 50):
                        async with client.post(
                            url,
                            json={"message": f"msg {n}", "session_id": f"mem-{i:04d}"},
                            headers=headers,
                        ) as response:
                            await response.read()
                            sent += 1

                await asyncio.gather(*(talk(i) for i in range(50)))
            after = rss_mb(daemon.process.pid)
            print(
                f"5. resident memory: {before:.0f} MB at start, {after:.0f} MB after {sent:,} chat messages "
                f"(target < 150 MB)"
            )
    stored = subprocess.run(
        [*tcai, "leads", "list", "--workspace", "bench", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    print(
        f"   phone numbers given while the LLM hung and stored as leads: {stored.count('+1772555')} of 50"
    )


if __name__ == "__main__":
    asyncio.run(main())
