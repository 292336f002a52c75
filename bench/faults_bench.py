"""The chat engine's promises under faults, measured against a real `tcai serve`.

Three scenarios, each printing what a visitor got and how many contacts were kept:
1. the LLM hangs, N visitors (default 200) at once, each giving a phone number: the
   slowest answer (target < 5 s from the request's arrival) and phones stored (target all);
2. the database goes away for a while in the middle of steady traffic (PostgreSQL: the
   bench's scratch database stops taking connections and its backends are terminated;
   SQLite: the bench holds an exclusive lock on the file), then comes back: answers,
   spooled contacts, and leads after `tcai leads recover` (target: leads = visitors);
3. the LLM's stream stops after its first chunk, 20 visitors streaming: every stream ends
   with a `done` event carrying the failsafe answer, and every phone is stored.

The daemon, the stub LLM and this load generator each run in their own process on
127.0.0.1. Figures are wall-clock on a shared machine: read them as bounds, not speeds.
Usage: python bench/faults_bench.py [--visitors 200] [--outage-seconds 9]
       [--postgres postgresql://postgres@127.0.0.1:5432/test]   (default: SQLite)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from served import Daemon, tcai

from tcai.config import new_secret

CLIENT, BOT = "fade-factory", "fade-factory_main"
STUB = """
import asyncio, sys
from tcai.quality.stub_llm import StubLLM
async def main():
    async with StubLLM(mode=sys.argv[2]) as stub:
        print(stub.base_url, flush=True)
        await asyncio.Event().wait()
asyncio.run(main())
"""


def start_stub(mode: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-c", STUB, "-", mode], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def phone(i: int) -> str:
    return f"772-555-{i:04d}"


def stored_phones(env: dict[str, str]) -> set[str]:
    rows = json.loads(tcai(env, "leads", "list", "--workspace", CLIENT, "--json"))
    return {row["phone"] for row in rows}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


async def visit(
    client: aiohttp.ClientSession, daemon: Daemon, headers: dict[str, str], i: int, **extra: Any
) -> dict[str, Any]:
    started = time.monotonic()
    try:
        async with client.post(
            daemon.chat_url(),
            json={"message": f"Hi, I'm Sam, call me at {phone(i)}"},
            headers={**headers, **extra},
        ) as response:
            body = await response.text()
            status = response.status
    except aiohttp.ClientError as exc:
        body, status = str(exc), 0
    return {"seconds": time.monotonic() - started, "status": status, "body": body}


async def hung_llm(env: dict[str, str], visitors: int) -> None:
    stub, url = start_stub("stall")
    try:
        async with Daemon(
            {**env, "OPENAI_API_KEY": "bench-key", "OPENAI_BASE_URL": url}, CLIENT
        ) as d:
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as client:
                headers = await d.headers()
                results = await asyncio.gather(
                    *(visit(client, d, headers, 1000 + i) for i in range(visitors))
                )
    finally:
        stub.terminate()
    tcai(env, "leads", "recover")
    sent = {"+1772555" + f"{1000 + i:04d}" for i in range(visitors)}
    kept = len(stored_phones(env) & sent)
    times = [r["seconds"] for r in results]
    statuses = sorted({r["status"] for r in results})
    print(
        f"1. LLM hangs, {visitors} visitors at once: answers p50 {pct(times, 50):.2f} s, "
        f"p99 {pct(times, 99):.2f} s, slowest {max(times):.2f} s (target < 5 s); "
        f"HTTP {statuses}; phones stored {kept}/{visitors}"
    )


class Outage:
    def __init__(self, env: dict[str, str], scratch: str | None, sqlite_path: Path | None):
        self.env, self.scratch, self.sqlite_path = env, scratch, sqlite_path
        self.holder: sqlite3.Connection | None = None

    def admin(self) -> sa.Engine:
        base = self.env["BENCH_ADMIN_URL"]
        return sa.create_engine(base, isolation_level="AUTOCOMMIT")

    def down(self) -> None:
        if self.sqlite_path is not None:
            self.holder = sqlite3.connect(self.sqlite_path, timeout=30, isolation_level=None)
            self.holder.execute("BEGIN EXCLUSIVE")
            return
        engine = self.admin()
        with engine.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{self.scratch}" ALLOW_CONNECTIONS false')
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{self.scratch}' AND pid <> pg_backend_pid()"
            )
        engine.dispose()

    def up(self) -> None:
        if self.holder is not None:
            self.holder.execute("ROLLBACK")
            self.holder.close()
            self.holder = None
            return
        engine = self.admin()
        with engine.connect() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{self.scratch}" ALLOW_CONNECTIONS true')
        engine.dispose()


async def database_outage(
    env: dict[str, str], outage: Outage, seconds: float, rate: float = 10.0
) -> None:
    total_s = seconds + 6.0
    count = int(total_s * rate)
    connector = aiohttp.TCPConnector(limit=0)
    async with Daemon(env, CLIENT) as d, aiohttp.ClientSession(connector=connector) as client:
        headers = await d.headers()
        tasks = []
        started = time.monotonic()
        is_down = False
        for i in range(count):
            at = started + i / rate
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            elapsed = time.monotonic() - started
            if not is_down and 3.0 <= elapsed < 3.0 + seconds:
                await asyncio.to_thread(outage.down)
                is_down = True
            elif is_down and elapsed >= 3.0 + seconds:
                await asyncio.to_thread(outage.up)
                is_down = False
            tasks.append(asyncio.create_task(visit(client, d, headers, 3000 + i)))
        results = await asyncio.gather(*tasks)
        if is_down:
            outage.up()
    spool = Path(env["LOG_DIR"]) / "lead-spool.jsonl"
    spooled = len(spool.read_text().splitlines()) if spool.exists() else 0
    leaked = sum(
        1
        for r in results
        for word in ("PostgreSQL", "SQLite", "5432", "DATABASE_URL", "psycopg", "Traceback")
        if word in r["body"]
    )
    tcai(env, "leads", "recover")
    sent = {"+1772555" + f"{3000 + i:04d}" for i in range(count)}
    kept = len(stored_phones(env) & sent)
    statuses: dict[int, int] = {}
    for r in results:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    times = [r["seconds"] for r in results]
    print(
        f"2. database down {seconds:.0f} s in {total_s:.0f} s of traffic ({count} visitors): "
        f"HTTP {statuses}, slowest {max(times):.2f} s, {spooled} spooled, "
        f"{leaked} replies naming the database; leads after recovery {kept}/{count}"
    )


async def stalled_stream(env: dict[str, str], visitors: int = 20) -> None:
    stub, url = start_stub("stall_mid")
    try:
        streaming = {**env, "OPENAI_API_KEY": "bench-key", "OPENAI_BASE_URL": url}
        async with Daemon(streaming, CLIENT) as d, aiohttp.ClientSession() as client:
            headers = await d.headers()
            results = await asyncio.gather(
                *(
                    visit(client, d, headers, 5000 + i, Accept="text/event-stream")
                    for i in range(visitors)
                )
            )
    finally:
        stub.terminate()
    done = sum(
        1
        for r in results
        if "event: done" in r["body"]
        and '"source": "failsafe"' in r["body"].split("event: done")[1]
    )
    sent = {"+1772555" + f"{5000 + i:04d}" for i in range(visitors)}
    kept = len(stored_phones(env) & sent)
    print(
        f"3. LLM stream stops after its first chunk, {visitors} visitors: {done}/{visitors} "
        f"streams ended with done + failsafe, slowest {max(r['seconds'] for r in results):.2f} s, "
        f"phones stored {kept}/{visitors}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=200)
    parser.add_argument("--outage-seconds", type=float, default=9.0)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a scratch database is made)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as work:
        env = {
            **os.environ,
            "WIDGET_SECRET": new_secret(),
            "LOG_DIR": str(Path(work) / "logs"),
            "CHAT_RATE_LIMIT": "100000/minute",
            "CHAT_BOT_RATE_LIMIT": "100000/hour",
            "TCAI_ENV": "development",
        }
        env.pop("OPENAI_API_KEY", None)
        scratch = None
        sqlite_path = None
        if args.postgres:
            scratch = f"tcai_bench_{uuid.uuid4().hex[:8]}"
            admin_url = args.postgres.replace("postgresql://", "postgresql+psycopg://", 1)
            env["BENCH_ADMIN_URL"] = admin_url
            admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{scratch}"')
            env["DATABASE_URL"] = args.postgres.rsplit("/", 1)[0] + f"/{scratch}"
        else:
            sqlite_path = Path(work) / "bench.db"
            env["DATABASE_URL"] = f"sqlite:///{sqlite_path}"
        engine_name = "PostgreSQL" if args.postgres else "SQLite"
        try:
            tcai(env, "init")
            tcai(env, "templates", "seed")
            tcai(
                env,
                *("clients", "create", "--template", "barber", "--slug", CLIENT),
                *("--name", "Fade Factory", "--phone", "+1 772 555 0100", "--plan", "enterprise"),
            )
            print(f"faults bench on {engine_name} ({os.cpu_count()} cores)")
            await hung_llm(env, args.visitors)
            await database_outage(env, Outage(env, scratch, sqlite_path), args.outage_seconds)
            await stalled_stream(env)
        finally:
            if scratch is not None:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'ALTER DATABASE "{scratch}" ALLOW_CONNECTIONS true')
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
                admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
