"""Abuse without self-harm: normal visitors' success and p99 while 20 addresses flood a bot.

A real `tcai serve` (its own process) with the default limits, a stub LLM answering in
`--llm-ms` (its own process), and this load generator. Two phases in the same run:

1. baseline: `--visitors` normal visitors chat for `--seconds`, each from its own
   loopback address (127.0.1.N), one message every 4-10 s (people type), each with its
   own session;
2. under attack, for `--attack-seconds`: the same visitors again, while 20 abusive
   addresses (127.0.2.1-20) each send messages as fast as the daemon answers them,
   inventing a new session id for every message (the cheapest way to dodge a
   per-session limit).

Each address is a real source address on loopback (the daemon sees distinct peers; no
proxy header is trusted). Printed per phase: normal visitors' success rate (HTTP 200 with
an answer) and p50/p99 latency, how many of their answers came from the LLM (under attack
also after its first minute, once the flood counts as heavy and cannot touch the bot's
reserve), and for the attack the abusers' accepted and refused (429) messages and the
largest Retry-After. Target: normal visitors' success 100 % and p99 within 2× the
baseline's; no Retry-After over 60 s. Figures are wall-clock on a shared 2-core machine:
read them as bounds.

Usage: python bench/abuse_bench.py [--visitors 20] [--seconds 20] [--attack-seconds 90]
       [--llm-ms 300]
       [--postgres postgresql://postgres@127.0.0.1:5432/test]   (default: SQLite)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import sqlalchemy as sa
from served import ORIGIN, Daemon, tcai

from tcai.config import new_secret

CLIENT = "fade-factory"
ABUSERS = 20
QUESTIONS = ("what are your hours?", "how much is a fade?", "where are you?", "do you do beards?")
STUB = """
import asyncio, sys
from tcai.quality.stub_llm import StubLLM
async def main():
    async with StubLLM(delay_s=float(sys.argv[1])) as stub:
        print(stub.base_url, flush=True)
        await asyncio.Event().wait()
asyncio.run(main())
"""


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    ok: int = 0
    refused: int = 0
    failed: int = 0
    sources: dict[str, int] = field(default_factory=dict)
    retry_after: int = 0
    late: list[str] = field(default_factory=list)
    """Sources of the answers after `late_after` (the attack's second minute on)."""
    late_after: float = float("inf")

    @property
    def sent(self) -> int:
        return self.ok + self.refused + self.failed


async def token(daemon: Daemon) -> str:
    return await daemon.token()


def session_for(address: str) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(local_addr=(address, 0), limit=4)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))


async def send(client: aiohttp.ClientSession, daemon: Daemon, headers, body, tally: Tally) -> None:
    started = time.monotonic()
    try:
        async with client.post(daemon.chat_url(), json=body, headers=headers) as response:
            data = await response.json(content_type=None)
            status = response.status
            retry = response.headers.get("Retry-After")
    except (aiohttp.ClientError, TimeoutError, ValueError):
        tally.failed += 1
        return
    tally.latencies.append(time.monotonic() - started)
    if status == 200 and data.get("reply"):
        tally.ok += 1
        tally.sources[data["source"]] = tally.sources.get(data["source"], 0) + 1
        if started >= tally.late_after:
            tally.late.append(data["source"])
    elif status == 429:
        tally.refused += 1
        tally.retry_after = max(tally.retry_after, int(retry or 0))
    else:
        tally.failed += 1


async def normal_visitor(daemon: Daemon, headers, n: int, until: float, tally: Tally) -> None:
    rng = random.Random(n)
    session_id = f"visitor-{uuid.uuid4().hex[:16]}"
    async with session_for(f"127.0.1.{n + 1}") as client:
        while time.monotonic() < until:
            body = {"message": rng.choice(QUESTIONS), "session_id": session_id}
            await send(client, daemon, headers, body, tally)
            await asyncio.sleep(rng.uniform(4.0, 10.0))


async def abuser(daemon: Daemon, headers, n: int, until: float, tally: Tally) -> None:
    async with session_for(f"127.0.2.{n + 1}") as client:
        while time.monotonic() < until:
            body = {"message": "spam spam spam", "session_id": f"x{uuid.uuid4().hex[:20]}"}
            await send(client, daemon, headers, body, tally)


def report(name: str, visitors: Tally) -> None:
    rate = 100.0 * visitors.ok / max(1, visitors.sent)
    llm = visitors.sources.get("llm", 0)
    late = (
        f"; after the first minute {visitors.late.count('llm')}/{len(visitors.late)}"
        if visitors.late
        else ""
    )
    print(
        f"  {name:<13} normal visitors: {visitors.ok}/{visitors.sent} answered ({rate:.1f} %), "
        f"p50 {pct(visitors.latencies, 50) * 1000:.0f} ms, "
        f"p99 {pct(visitors.latencies, 99) * 1000:.0f} ms, from the LLM {llm}/{visitors.ok}"
        f"{late}"
    )


async def phase(daemon: Daemon, visitors: int, seconds: float, attack: bool) -> tuple[Tally, Tally]:
    headers = {"Origin": ORIGIN, "Authorization": f"Bearer {await token(daemon)}"}
    started = time.monotonic()
    until = started + seconds
    normal, abusive = Tally(), Tally()
    if attack:
        normal.late_after = started + 60
    tasks = [normal_visitor(daemon, headers, n, until, normal) for n in range(visitors)]
    if attack:
        tasks += [abuser(daemon, headers, n, until, abusive) for n in range(ABUSERS)]
    await asyncio.gather(*tasks)
    return normal, abusive


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--attack-seconds", type=float, default=90.0)
    parser.add_argument("--llm-ms", type=int, default=300)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a scratch database is made)")
    args = parser.parse_args()

    stub = subprocess.Popen(
        [sys.executable, "-c", STUB, str(args.llm_ms / 1000)], stdout=subprocess.PIPE, text=True
    )
    assert stub.stdout is not None
    base_url = stub.stdout.readline().strip()
    with tempfile.TemporaryDirectory() as work:
        env = {
            **os.environ,
            "WIDGET_SECRET": new_secret(),
            "LOG_DIR": str(Path(work) / "logs"),
            "TCAI_ENV": "development",
            "OPENAI_BASE_URL": base_url,
            "OPENAI_API_KEY": "bench-key",
        }
        for name in ("CHAT_RATE_LIMIT", "CHAT_ADDRESS_RATE_LIMIT", "CHAT_BOT_RATE_LIMIT"):
            env.pop(name, None)  # the defaults are what is measured
        scratch = admin = None
        if args.postgres:
            scratch = f"tcai_bench_{uuid.uuid4().hex[:8]}"
            admin = sa.create_engine(
                args.postgres.replace("postgresql://", "postgresql+psycopg://", 1),
                isolation_level="AUTOCOMMIT",
            )
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{scratch}"')
            env["DATABASE_URL"] = args.postgres.rsplit("/", 1)[0] + f"/{scratch}"
        else:
            env["DATABASE_URL"] = f"sqlite:///{Path(work) / 'bench.db'}"
        try:
            tcai(env, "init")
            tcai(env, "templates", "seed")
            tcai(
                env,
                *("clients", "create", "--template", "barber", "--slug", CLIENT),
                *("--name", "Fade Factory", "--phone", "+1 772 555 0100", "--plan", "enterprise"),
            )
            engine = "PostgreSQL" if args.postgres else "SQLite"
            print(
                f"abuse bench on {engine} ({os.cpu_count()} cores): {args.visitors} normal "
                f"visitors, {ABUSERS} abusive addresses, baseline {args.seconds:.0f} s, "
                f"attack {args.attack_seconds:.0f} s, "
                f"LLM {args.llm_ms} ms; default limits"
            )
            results = {}
            for name, attack in (("baseline", False), ("under attack", True)):
                async with Daemon(env, CLIENT, log_path=Path(work) / "daemon.log") as daemon:
                    seconds = args.attack_seconds if attack else args.seconds
                    results[name] = await phase(daemon, args.visitors, seconds, attack)
                report(name, results[name][0])
            abusive = results["under attack"][1]
            print(
                f"  abusers: {abusive.sent} messages, {abusive.ok} answered, "
                f"{abusive.refused} refused (429), largest Retry-After {abusive.retry_after} s, "
                f"answered from the LLM {abusive.sources.get('llm', 0)}"
            )
            base, attacked = results["baseline"][0], results["under attack"][0]
            ratio = pct(attacked.latencies, 99) / max(1e-9, pct(base.latencies, 99))
            print(f"  normal visitors' p99 under attack / baseline: {ratio:.2f}x")
        finally:
            stub.terminate()
            if admin is not None:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
                admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
