"""Benchmark the daemon and the CLI against baselines measured in the same run.

Per database engine (a SQLite file; the local PostgreSQL in a scratch database made for
the run and dropped after, when the server answers), each figure printed with its target
and, where there is one, its ratio to a baseline:

1. CPU ms per chat turn of the daemon process, in facts mode (no LLM key) and with an
   instant stub LLM, beside a bare aiohttp handler's CPU ms per request (a POST with a
   JSON body answered with JSON). A fixed, modest concurrency (8) so the figure is work,
   not queueing; sessions of four turns cycling hours, prices, booking and a message
   with a phone number; a warm-up round, then the best of several rounds.
2. GET /api/health against the bare handler's GET under wrk (A B A B A B, best of 3
   each): the requests/s ratio and the ratio of CPU per request.
3. p50/p99 of N closed-loop visitors (each sends its next message as soon as it has its
   reply) with a stub LLM that answers in 1 s; whether the daemon had a core to itself.
4. The slowest answer of N visitors while the LLM hangs (stub mode "stall"), each giving
   a phone number, and how many of those numbers `tcai leads list` shows afterwards.
5. The daemon's resident memory (VmRSS, summed over its processes) at start and after
   --messages chat messages.
6. CLI start-up: CPU seconds (user + sys of the child, from os.wait4) best of N for
   `tcai --version`, `--help` and `bots pause`, with the top 5 imports by cumulative
   time from `python -X importtime`; and `templates seed`, `validate`, `smoke`, `sweep`
   as four processes on a fresh SQLite file (total wall and CPU).

How: every server (`tcai serve`, the bare aiohttp app in bench/bare_server.py, the stub
LLM) runs in its own process; this process is only the load generator (for section 2,
wrk, installed from Debian's packages when missing, else an aiohttp load generator in a
process of its own). A server's CPU is read from /proc/PID/stat (utime + stime,
fields 14 and 15, plus 16 and 17 for children it reaped, over the process and its
descendants, in SC_CLK_TCK ticks) before and after the load, once the process has gone
quiet. With two or more cores the servers are pinned to the last core and this process,
wrk and the stub to the others (--no-pin to leave scheduling alone; --boost -10 to run
the servers at a higher priority on a machine other jobs share).

Why CPU per operation: on a busy shared machine (other jobs, a slow neighbour) requests
per second and latency move with everything else that runs, while the CPU a process
spends per request barely does; and a ratio to a bare aiohttp server measured in the
same run cancels most of the machine's own speed. Wall-clock figures (sections 3 and 4)
are bounds a visitor sees; read them with the core note beside them.

Only the CLI (`db upgrade`, `templates seed`, `clients create`, `serve --port`,
`leads list --json`, `bots pause/resume`), `tcai.quality.stub_llm.StubLLM` and
`tcai.config.new_secret` are used, so an older checkout's venv can run this same file.
Everything is printed, with ✓/✗ against its target; nothing is asserted. After each
section the daemons' error log lines ($LOG_DIR/tcai.jsonl) and any contacts spooled
because the database could not take them are printed too.

Usage: python bench/daemon_bench.py [--engine sqlite|postgres|both] [--quick]
       [--only 1,3] [--messages 10000] [--visitors 200] [--turns 600] [--rounds 3]
       [--seconds 15] [--wrk-seconds 3] [--concurrency 8] [--memory-concurrency 32]
       [--cli-rounds 5] [--postgres URL] [--no-pin] [--boost NICE] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import itertools
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from served import Daemon, pin

from tcai.config import new_secret

HERE = Path(__file__).resolve().parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
TCAI = [sys.executable, "-m", "tcai"]
CLIENT, BOT = "bench", "bench_main"
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
ALL_CPUS = set(os.sched_getaffinity(0))  # before main() pins this process

# The stub LLM in its own process: argv = mode, delay_s; prints its base URL when ready.
STUB = """
import asyncio, sys
from tcai.quality.stub_llm import StubLLM
async def main():
    async with StubLLM(reply="Sure, happy to help. Anything else?") as stub:
        stub.mode = sys.argv[1]
        stub.delay_s = float(sys.argv[2])
        print(stub.base_url, flush=True)
        await asyncio.Event().wait()
asyncio.run(main())
"""

# Section 2's load generator when wrk cannot be installed: its own process, GET only.
LOADGEN = """
import asyncio, json, sys, time
import aiohttp
async def main(url, connections, seconds):
    done = non2xx = errors = 0
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as s:
        async def worker():
            nonlocal done, non2xx, errors
            while time.monotonic() < deadline:
                try:
                    async with s.get(url) as r:
                        await r.read()
                        done += 1
                        non2xx += not 200 <= r.status < 400
                except aiohttp.ClientError:
                    errors += 1
        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(connections)))
    took = time.monotonic() - started
    print(json.dumps({"requests": done, "seconds": took, "non2xx": non2xx, "errors": errors}))
asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
"""

# Sessions of four turns: the usual work of a chat, not one path.
QUESTIONS = (
    "What are your hours on Saturday?",
    "How much is a classic fade?",
    "Can I book a haircut for tomorrow afternoon?",
    "Great, I'm Sam. Please call me back at {phone}",
)


# -- /proc ----------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields 3… (the name may hold spaces)


def process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants (a forking daemon's workers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parents[int(entry.name)] = int(_stat_fields(int(entry.name))[1])
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [child for child, parent in parents.items() if parent in frontier]
        tree.extend(frontier)
    return tree


def cpu_seconds(pid: int) -> float:
    """utime + stime (+ reaped children's) of the process tree, all threads, in seconds."""
    ticks = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            fields = _stat_fields(member)
            ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))  # fields 14–17
    return ticks / CLK_TCK


def rss_mb(pid: int) -> tuple[float, float, int]:
    """(VmRSS of `pid`, VmRSS summed over its tree, processes in the tree), in MB."""
    sizes = []
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
    return (sizes[0] if sizes else float("nan")), sum(sizes), len(sizes)


def core_times() -> dict[int, tuple[float, float, float]]:
    """Per CPU since boot, from /proc/stat, in seconds: (process time: user, nice, system;
    interrupts: irq, softirq; steal: time the hypervisor ran someone else)."""
    times = {}
    for line in Path("/proc/stat").read_text().splitlines():
        match = re.match(r"cpu(\d+)\s+(.*)", line)
        if match:
            v = [int(x) / CLK_TCK for x in match.group(2).split()] + [0.0] * 8
            times[int(match.group(1))] = (v[0] + v[1] + v[2], v[5] + v[6], v[7])
    return times


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def quiet_cpu(pid: int, max_s: float = 3.0) -> float:
    """The tree's CPU seconds once it stops working (background writes of the last turns
    finish), or after `max_s`."""
    last = cpu_seconds(pid)
    deadline = time.monotonic() + max_s
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        now = cpu_seconds(pid)
        if now - last <= 1.0 / CLK_TCK:
            return now
        last = now
    return last


# -- processes ------------------------------------------------------------------------------


def tcai(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*TCAI, *args], env=env, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"tcai {' '.join(args)} exited {done.returncode}: {done.stderr[-800:]}")
    return done


@contextlib.asynccontextmanager
async def helper(
    argv: list[str], cpus: set[int] | None = None, nice: int | None = None
) -> AsyncIterator[tuple[str, int]]:
    """A helper server process (stub LLM, bare aiohttp): yields (its first line, its pid)."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    pin(process.pid, cpus, nice)
    try:
        assert process.stdout is not None
        line = (await asyncio.to_thread(process.stdout.readline)).strip()
        if not line:
            raise RuntimeError(f"{argv[:3]} did not start")
        pin(process.pid, cpus, nice)
        yield line, process.pid
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stub_llm(
    mode: str, delay_s: float = 0.0, nice: int | None = None
) -> contextlib.AbstractAsyncContextManager[tuple[str, int]]:
    """The stub LLM in its own process (on this process's cores): yields (base URL, pid)."""
    return helper([sys.executable, "-c", STUB, mode, str(delay_s)], None, nice)


# -- load -----------------------------------------------------------------------------------


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.statuses.update(other.statuses)
        self.sources.update(other.sources)
        self.latencies.extend(other.latencies)
        self.failures.update(other.failures)

    def count(self) -> int:
        return sum(self.statuses.values())

    def describe(self) -> str:
        http = ", ".join(f"{s}×{n}" for s, n in sorted(self.statuses.items())) or "none"
        text = f"HTTP {http}"
        if self.sources:
            text += "; sources " + ", ".join(f"{s} {n}" for s, n in self.sources.most_common())
        if self.failures:
            text += "; failures " + ", ".join(f"{k} {n}" for k, n in self.failures.items())
        return text


def phone(area: int, n: int) -> str:
    return f"{area}-555-{n % 10_000:04d}"


async def send(
    client: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    body: dict[str, str],
    tally: Tally,
) -> None:
    started = time.monotonic()
    try:
        async with client.post(url, json=body, headers=headers) as response:
            raw = await response.read()
            tally.statuses[response.status] += 1
            with contextlib.suppress(ValueError, AttributeError, TypeError):
                answer = json.loads(raw)
                if "source" in answer:
                    tally.sources[str(answer["source"])] += 1
                elif "error" in answer:
                    tally.failures[f"{response.status} {answer['error'].get('code')}"] += 1
    except (TimeoutError, aiohttp.ClientError) as exc:
        tally.failures[type(exc).__name__] += 1
    tally.latencies.append(time.monotonic() - started)


SESSIONS = itertools.count()  # session numbers, unique over the run (and so phone numbers)


async def chat_load(
    url: str, headers: dict[str, str], turns: int, concurrency: int, tag: str, area: int
) -> tuple[Tally, float]:
    """About `turns` chat turns (whole sessions of four) by `concurrency` workers."""
    tally = Tally()
    sessions = [next(SESSIONS) for _ in range(-(-turns // len(QUESTIONS)))]
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:

        async def worker() -> None:
            while sessions:
                n = sessions.pop()
                for question in QUESTIONS:
                    body = {
                        "message": question.format(phone=phone(area, n)),
                        "session_id": f"bench-{tag}-{n:07d}",
                    }
                    await send(client, url, headers, body, tally)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tally, time.monotonic() - started


@dataclass
class Rounds:
    per_op_ms: list[float]
    tally: Tally
    rate: float  # operations per second in the best round

    @property
    def best(self) -> float:
        return min(self.per_op_ms)


async def cpu_rounds(pid: int, rounds: int, run: Callable[[str], Any], warm: bool = True) -> Rounds:
    """A warm-up round, then `rounds` rounds: the server's CPU ms per operation each."""
    if warm:
        await run("w")
    per_op, tally, rates = [], Tally(), []
    for r in range(rounds):
        before = await quiet_cpu(pid)
        round_tally, seconds = await run(f"r{r}")
        after = await quiet_cpu(pid)
        count = max(1, round_tally.count())
        per_op.append((after - before) * 1000 / count)
        rates.append(count / seconds)
        tally.add(round_tally)
    return Rounds(per_op, tally, rates[per_op.index(min(per_op))])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


# -- results --------------------------------------------------------------------------------


@dataclass
class Cell:
    text: str
    ok: bool | None = None

    def mark(self) -> str:
        return {True: " ✓", False: " ✗", None: ""}[self.ok]


ROWS = [
    ("cpu_facts", "1. daemon CPU ms/chat turn, facts mode", "≤ 2.0 (PG ≤ 2.5)"),
    ("cpu_stub", "1. daemon CPU ms/chat turn, instant stub LLM", "≤ 3.0 (PG ≤ 3.3)"),
    ("cpu_bare", "1. bare aiohttp CPU ms/request (POST JSON)", "baseline"),
    ("health_rate", "2. /api/health req/s vs bare aiohttp", "≥ 0.8×"),
    ("health_cpu", "2. /api/health CPU/request vs bare aiohttp", "—"),
    ("p99", "3. p99, closed-loop visitors, LLM takes 1 s", "≤ 1.15 s"),
    ("hung", "4. slowest answer, LLM hangs", "< 5 s"),
    ("hung_leads", "4. phones given while the LLM hangs, stored", "all"),
    ("rss_start", "5. daemon RSS at start", "< 100 MB"),
    ("rss_after", "5. daemon RSS after the messages", "< 110 MB"),
    ("cli_version", "6. `tcai --version` CPU", "< 0.3 s"),
    ("cli_help", "6. `tcai --help` CPU", "< 0.3 s"),
    ("cli_disable", "6. `tcai bots pause` CPU", "< 1 s"),
    ("cli_templates", "6. templates seed+validate+smoke+sweep (SQLite)", "< 10 s"),
]


class Report:
    def __init__(self) -> None:
        self.cells: dict[str, dict[str, Cell]] = {}

    def put(self, engine: str, key: str, cell: Cell, line: str) -> None:
        self.cells.setdefault(engine, {})[key] = cell
        print(f"  {line}{cell.mark()}", flush=True)


# -- the run --------------------------------------------------------------------------------


@dataclass
class Run:
    args: argparse.Namespace
    report: Report
    engine: str  # "SQLite" or "PostgreSQL"
    env: dict[str, str]
    work: Path
    server_cpus: set[int] | None
    bench_cpus: set[int] | None
    nice: int | None = None
    daemons: int = 0
    log_offset: int = 0
    spool_lines: int = 0

    def daemon(self, env: dict[str, str] | None = None) -> Daemon:
        self.daemons += 1
        log = self.work / "logs" / f"daemon-{self.daemons}.stderr"
        return Daemon(env or self.env, CLIENT, cpus=self.server_cpus, nice=self.nice, log_path=log)

    def llm_env(self, base_url: str) -> dict[str, str]:
        return {**self.env, "OPENAI_API_KEY": "bench-key", "OPENAI_BASE_URL": base_url}

    def put(self, key: str, cell: Cell, line: str) -> None:
        self.report.put(self.engine, key, cell, line)

    def log_errors(self) -> None:
        """Print the error lines the daemons logged since the last call ($LOG_DIR/tcai.jsonl)."""
        path = Path(self.env["LOG_DIR"]) / "tcai.jsonl"
        if not path.exists():
            return
        with path.open("rb") as log:
            log.seek(self.log_offset)
            fresh = log.read()
        self.log_offset += len(fresh)
        events: Counter[str] = Counter()
        for raw in fresh.splitlines():
            with contextlib.suppress(ValueError, AttributeError):
                entry = json.loads(raw)
                if entry.get("level") in ("error", "critical"):
                    events[f"{entry.get('logger')}: {str(entry.get('event'))[:120]}"] += 1
        if events:
            shown = "; ".join(f"{n}× {event}" for event, n in events.most_common(3))
            print(f"  daemon log: {sum(events.values())} error lines: {shown}", flush=True)
        spooled = self.spooled()
        if spooled:
            print(f"  lead spool: {spooled} contacts the database could not take", flush=True)

    def spooled(self) -> int:
        """Lines added to the lead spool ($LOG_DIR/lead-spool.jsonl) since the last call."""
        spool = Path(self.env["LOG_DIR"]) / "lead-spool.jsonl"
        lines = len(spool.read_bytes().splitlines()) if spool.exists() else 0
        fresh, self.spool_lines = lines - self.spool_lines, lines
        return fresh

    @property
    def pg(self) -> bool:
        return self.engine == "PostgreSQL"


@contextlib.asynccontextmanager
async def llm_daemon(run: Run, mode: str, delay_s: float = 0.0) -> AsyncIterator[Daemon]:
    """A stub LLM process in `mode`, and a daemon that talks to it (stopped first)."""
    stub = stub_llm(mode, delay_s, run.nice)
    async with stub as (base_url, _pid), run.daemon(run.llm_env(base_url)) as d:
        yield d


async def section_cpu(run: Run) -> None:
    args = run.args
    print(
        f"1. CPU per chat turn: {args.concurrency} connections, a warm-up round of "
        f"{args.turns} then best of {args.rounds} × {args.turns}",
        flush=True,
    )
    # The bare handler costs a few % of a turn: more requests, for as many clock ticks.
    bare_requests = max(3 * args.turns, 2000)
    bare_server = helper([sys.executable, str(HERE / "bare_server.py")], run.server_cpus, run.nice)
    async with bare_server as (port, pid):
        url = f"http://127.0.0.1:{port}/"
        bare = await cpu_rounds(
            pid,
            args.rounds,
            lambda tag: chat_load(url, {}, bare_requests, args.concurrency, f"b{tag}", 561),
        )
    run.put(
        "cpu_bare",
        Cell(f"{bare.best:.3f}"),
        f"bare aiohttp POST JSON: {bare.best:.3f} CPU ms/request "
        f"(rounds {', '.join(f'{v:.3f}' for v in bare.per_op_ms)}), {bare.rate:,.0f} req/s; "
        f"{bare.tally.describe()}",
    )

    async def measure(key: str, label: str, env: dict[str, str], target: float) -> None:
        async with run.daemon(env) as daemon:
            headers = await daemon.headers()
            url = daemon.chat_url()
            result = await cpu_rounds(
                daemon.pid,
                args.rounds,
                lambda tag: chat_load(
                    url, headers, args.turns, args.concurrency, f"{key[4]}{tag}", 305
                ),
            )
        ratio = result.best / bare.best
        run.put(
            key,
            Cell(f"{result.best:.2f} ({ratio:.1f}× bare)", result.best <= target),
            f"{label}: {result.best:.2f} CPU ms/turn (target ≤ {target}), {ratio:.1f}× the "
            f"bare handler; rounds {', '.join(f'{v:.2f}' for v in result.per_op_ms)}; "
            f"{result.rate:,.0f} turns/s; {result.tally.describe()}",
        )

    await measure("cpu_facts", "facts mode", run.env, 2.5 if run.pg else 2.0)
    async with stub_llm("answer", 0.0, run.nice) as (base_url, _stub):
        await measure("cpu_stub", "instant stub LLM", run.llm_env(base_url), 3.3 if run.pg else 3.0)


def ensure_wrk() -> str | None:
    """wrk, installed from Debian's packages when missing; None when that fails."""
    found = shutil.which("wrk")
    if found:
        return found
    for argv in (
        ["apt-get", "install", "-y", "wrk"],
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "wrk"],
    ):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            print(f"wrk is missing; {' '.join(argv)}: {exc}")
            return None
        tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-2:])
        print(f"wrk is missing; {' '.join(argv)} → exit {done.returncode}: {tail}", flush=True)
        found = shutil.which("wrk")
        if found:
            return found
    return None


@dataclass
class Load:
    requests: int
    seconds: float
    bad: int  # non-2xx/3xx answers and socket errors


async def wrk_load(wrk: str | None, url: str, connections: int, seconds: float) -> Load:
    if wrk is None:
        argv = [sys.executable, "-c", LOADGEN, url, str(connections), str(seconds)]
        done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True)
        data = json.loads(done.stdout)
        return Load(data["requests"], data["seconds"], data["non2xx"] + data["errors"])
    argv = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", url]
    done = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True)
    out = done.stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    if total is None:
        raise RuntimeError(f"wrk said: {out} {done.stderr}")
    took = float(total.group(2)) / (1000 if total.group(3) == "ms" else 1)
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors:
        bad += sum(int(n) for n in errors.groups())
    return Load(int(total.group(1)), took, bad)


async def section_health(run: Run, wrk: str | None) -> None:
    args = run.args
    tool = "wrk -t1 -c50" if wrk else "an aiohttp load generator (own process, 50 connections)"
    print(f"2. /api/health vs bare aiohttp: {tool}, {args.wrk_seconds:g} s, A B × 3", flush=True)
    rates: dict[str, list[float]] = {"bare": [], "health": []}
    cpus: dict[str, list[float]] = {"bare": [], "health": []}
    bad: Counter[str] = Counter()
    bare_server = helper([sys.executable, str(HERE / "bare_server.py")], run.server_cpus, run.nice)
    async with bare_server as (port, bare_pid), run.daemon() as daemon:
        targets = {
            "bare": (f"http://127.0.0.1:{port}/", bare_pid),
            "health": (daemon.base + "/api/health", daemon.pid),
        }
        for url, _pid in targets.values():  # warm-up
            await wrk_load(wrk, url, 50, 1)
        for _ in range(3):
            for name, (url, pid) in targets.items():
                before = await quiet_cpu(pid)
                load = await wrk_load(wrk, url, 50, args.wrk_seconds)
                after = await quiet_cpu(pid)
                rates[name].append(load.requests / load.seconds)
                cpus[name].append((after - before) * 1e6 / max(1, load.requests))
                bad[name] += load.bad
    rate_ratio = max(rates["health"]) / max(rates["bare"])
    cpu_ratio = min(cpus["health"]) / min(cpus["bare"])
    run.put(
        "health_rate",
        Cell(
            f"{rate_ratio:.2f}× ({max(rates['health']):,.0f} vs {max(rates['bare']):,.0f})",
            rate_ratio >= 0.8,
        ),
        f"requests/s: /api/health {max(rates['health']):,.0f}, bare {max(rates['bare']):,.0f} "
        f"= {rate_ratio:.2f}× (target ≥ 0.8×); bad answers: health {bad['health']}, "
        f"bare {bad['bare']}",
    )
    run.put(
        "health_cpu",
        Cell(f"{cpu_ratio:.2f}× ({min(cpus['health']):.0f} vs {min(cpus['bare']):.0f} µs)"),
        f"CPU/request: /api/health {min(cpus['health']):.0f} µs, bare {min(cpus['bare']):.0f} µs "
        f"= {cpu_ratio:.2f}×",
    )


def core_note(
    run: Run,
    before: dict[int, tuple[float, float, float]],
    after: dict[int, tuple[float, float, float]],
    daemon_cpu: float,
    seconds: float,
) -> str:
    """Whether the daemon had its core to itself while it was measured."""
    delta = {
        c: [(a - b) / seconds for a, b in zip(after[c], before[c], strict=True)] for c in after
    }
    if not run.server_cpus:
        busy = sum(sum(d) for d in delta.values())
        return f"daemon not pinned; machine busy {busy:.0%} of {len(delta)} cores"
    core = min(run.server_cpus)
    processes, interrupts, steal = delta[core]
    daemon = daemon_cpu / seconds
    others = max(0.0, processes - daemon)
    verdict = "had it to itself" if others + steal < 0.1 else "SHARED it"
    if run.nice is not None:
        verdict += f" (servers at nice {run.nice})"
    return (
        f"daemon pinned to cpu{core} and {verdict}: daemon {daemon:.0%} of it, other "
        f"processes {others:.0%}, interrupts {interrupts:.0%}, steal {steal:.0%}; load "
        f"generator + stub on cpu{','.join(map(str, sorted(run.bench_cpus or [])))}"
    )


async def section_slow_llm(run: Run) -> None:
    args = run.args
    visitors, seconds = args.visitors, args.seconds
    print(f"3. {visitors} closed-loop visitors for {seconds:g} s, LLM answers in 1 s", flush=True)
    tally = Tally()
    async with llm_daemon(run, "answer", 1.0) as daemon:
        headers, url = await daemon.headers(), daemon.chat_url()
        timeout = aiohttp.ClientTimeout(total=60)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
            started = time.monotonic()
            deadline = started + seconds

            async def visitor(i: int) -> None:
                await asyncio.sleep(i / visitors)  # arrivals spread over the first second
                n = 0
                while time.monotonic() < deadline:
                    session = i * 1000 + n // len(QUESTIONS)
                    question = QUESTIONS[n % len(QUESTIONS)]
                    body = {
                        "message": question.format(phone=phone(407, session)),
                        "session_id": f"bench-slow-{session:07d}",
                    }
                    await send(client, url, headers, body, tally)
                    n += 1

            cpu0, cores0, own0 = cpu_seconds(daemon.pid), core_times(), own_cpu()
            await asyncio.gather(*(visitor(i) for i in range(visitors)))
            took = time.monotonic() - started
            cpu1, cores1, own1 = cpu_seconds(daemon.pid), core_times(), own_cpu()
    note = core_note(run, cores0, cores1, cpu1 - cpu0, took)
    note += f" (the load generator used {(own1 - own0) / took:.0%} of a core)"
    p99 = pct(tally.latencies, 99)
    run.put(
        "p99",
        Cell(f"{p99:.3f} s", p99 <= 1.15),
        f"p50 {pct(tally.latencies, 50):.3f} s, p99 {p99:.3f} s (target ≤ 1.15 s), max "
        f"{max(tally.latencies):.3f} s over {tally.count():,} turns; {tally.describe()}; {note}",
    )


async def section_hung_llm(run: Run) -> None:
    visitors = run.args.visitors
    print(f"4. the LLM hangs: {visitors} visitors at once, each gives a phone number", flush=True)
    tally = Tally()
    async with llm_daemon(run, "stall") as daemon:
        headers, url = await daemon.headers(), daemon.chat_url()
        timeout = aiohttp.ClientTimeout(total=60)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
            await asyncio.gather(
                *(
                    send(
                        client,
                        url,
                        headers,
                        {
                            "message": f"Hi, I'm Sam, call me at {phone(772, 1000 + i)}",
                            "session_id": f"bench-hung-{i:05d}",
                        },
                        tally,
                    )
                    for i in range(visitors)
                )
            )
    # The daemon has drained (SIGTERM waits for in-flight turns): every write is done.
    rows = json.loads(tcai(run.env, "leads", "list", "--workspace", CLIENT, "--json").stdout)
    given = {"+1772555" + f"{1000 + i:04d}" for i in range(visitors)}
    stored = len(given & {str(row.get("phone")) for row in rows})
    spooled = run.spooled()
    slowest = max(tally.latencies)
    run.put(
        "hung",
        Cell(f"{slowest:.2f} s", slowest < 5),
        f"slowest answer {slowest:.2f} s (target < 5 s), p50 {pct(tally.latencies, 50):.2f} s; "
        f"{tally.describe()}",
    )
    run.put(
        "hung_leads",
        Cell(f"{stored}/{visitors}", stored == visitors),
        f"phone numbers stored as leads: {stored}/{visitors} (target all); "
        f"{spooled} spooled meanwhile",
    )


async def section_memory(run: Run) -> None:
    args = run.args
    print(
        f"5. resident memory, {args.messages:,} messages with an instant stub LLM, "
        f"{args.memory_concurrency} connections",
        flush=True,
    )
    async with llm_daemon(run, "answer") as daemon:
        await asyncio.sleep(0.5)
        start, start_tree, processes = rss_mb(daemon.pid)
        headers = await daemon.headers()
        tally, took = await chat_load(
            daemon.chat_url(), headers, args.messages, args.memory_concurrency, "mem", 561
        )
        await quiet_cpu(daemon.pid)
        after, after_tree, processes_after = rss_mb(daemon.pid)
    tree = (
        f"; summed over {processes}→{processes_after} processes {start_tree:.0f}→{after_tree:.0f} MB"
        if max(processes, processes_after) > 1
        else ""
    )
    run.put(
        "rss_start",
        Cell(f"{start_tree:.0f} MB", start_tree < 100),
        f"at start (healthy, idle): {start:.1f} MB (target < 100 MB){tree}",
    )
    run.put(
        "rss_after",
        Cell(f"{after_tree:.0f} MB", after_tree < 110),
        f"after {tally.count():,} messages: {after:.1f} MB (target < 110 MB), "
        f"{tally.count() / took:,.0f} messages/s; {tally.describe()}",
    )


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """(CPU s user+sys of the child, wall s, exit code, stderr tail) via os.wait4."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
        pin(process.pid, ALL_CPUS)  # a command may use every core, as it would in real use
        _pid, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode(errors="replace")[-400:]
    return usage.ru_utime + usage.ru_stime, time.monotonic() - started, process.returncode, tail


def top_imports(args: list[str], env: dict[str, str], n: int = 5) -> str:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tcai", *args],
        env=env,
        capture_output=True,
        text=True,
    )
    entries = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if match:
            entries.append((int(match.group(2)), match.group(4)))
    entries.sort(reverse=True)
    return ", ".join(f"{name} {us / 1000:.0f}" for us, name in entries[:n])


def section_cli(run: Run, templates: bool) -> None:
    args, env = run.args, run.env
    print(f"6. CLI start-up: CPU s (user+sys), best of {args.cli_rounds}", flush=True)
    commands = [
        ("cli_version", ["--version"], 0.3),
        ("cli_help", ["--help"], 0.3),
        ("cli_disable", ["bots", "pause", BOT, "--reason", "bench"], 1.0),
    ]
    for key, argv, target in commands:
        cpu, wall, problems = [], [], []
        for _ in range(args.cli_rounds):
            c, w, code, tail = timed([*TCAI, *argv], env)
            cpu.append(c)
            wall.append(w)
            if code != 0:
                problems.append(f"exit {code}: {tail.strip()[-200:]}")
            if argv[0] == "bot":
                tcai(env, "bots", "resume", BOT, check=False)
        imports = top_imports(argv, env)
        if argv[0] == "bot":
            tcai(env, "bots", "resume", BOT, check=False)
        shown = " ".join(["tcai", *argv])
        note = f"; {problems[0]}" if problems else ""
        run.put(
            key,
            Cell(f"{min(cpu):.2f} s", min(cpu) < target and not problems),
            f"`{shown}`: {min(cpu):.3f} s CPU (target < {target:g} s), wall {min(wall):.3f} s; "
            f"top imports (cumulative ms): {imports}{note}",
        )
    if not templates:
        return
    folder = Path(tempfile.mkdtemp(prefix="tcai-bench-templates-"))
    sqlite_env = {**env, "DATABASE_URL": f"sqlite:///{folder / 'templates.db'}"}
    tcai(sqlite_env, "db", "upgrade")
    total_cpu = total_wall = 0.0
    parts = []
    for sub in ("seed", "validate", "smoke", "sweep"):
        c, w, code, tail = timed([*TCAI, "templates", sub], sqlite_env)
        total_cpu += c
        total_wall += w
        parts.append(
            f"{sub} {w:.2f}/{c:.2f}" + (f" (exit {code}: {tail[-150:]!r})" if code else "")
        )
    shutil.rmtree(folder, ignore_errors=True)
    run.put(
        "cli_templates",
        Cell(f"{total_wall:.1f} s wall, {total_cpu:.1f} s CPU", max(total_wall, total_cpu) < 10),
        f"templates seed, validate, smoke, sweep on a fresh SQLite file: {total_wall:.2f} s wall, "
        f"{total_cpu:.2f} s CPU (target < 10 s); wall/CPU s each: {', '.join(parts)}",
    )


# -- engines --------------------------------------------------------------------------------


def pg_reachable(url: str) -> str | None:
    """None when PostgreSQL answers at `url`, else why not."""
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=3):
            return None
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"


def pg_admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.encode())


def provision(env: dict[str, str]) -> None:
    tcai(env, "db", "upgrade")
    tcai(env, "templates", "seed")
    tcai(
        env,
        *("clients", "create", "--template", "barber", "--slug", CLIENT),
        *("--name", "Bench Barber", "--phone", "772-555-0100", "--plan", "enterprise"),
    )


async def run_engine(
    engine: str,
    args: argparse.Namespace,
    report: Report,
    cpus: tuple[set[int] | None, set[int] | None],
    wrk: str | None,
    templates: bool,
) -> None:
    work = Path(tempfile.mkdtemp(prefix="tcai-bench-"))
    env = {
        **os.environ,
        "WIDGET_SECRET": new_secret(),
        "LOG_DIR": str(work / "logs"),
        "TCAI_ENV": "development",
        # Every request comes from 127.0.0.1: lift the per-visitor and per-bot limits.
        "CHAT_RATE_LIMIT": "1000000/minute",
        "CHAT_BOT_RATE_LIMIT": "1000000/minute",
    }
    env.pop("OPENAI_API_KEY", None)
    env.pop("OPENAI_BASE_URL", None)
    scratch = None
    if engine == "PostgreSQL":
        scratch = f"tcai_bench_{uuid.uuid4().hex[:8]}"
        pg_admin(args.postgres, f'CREATE DATABASE "{scratch}"')
        env["DATABASE_URL"] = args.postgres.rsplit("/", 1)[0] + f"/{scratch}"
        where = f"scratch database {scratch}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{work / 'bench.db'}"
        where = str(work / "bench.db")
    print(f"\n## {engine} ({where})", flush=True)
    run = Run(args, report, engine, env, work, *cpus, nice=args.boost)
    try:
        provision(env)
        sections: list[tuple[int, Callable[[], Any]]] = [
            (1, lambda: section_cpu(run)),
            (2, lambda: section_health(run, wrk)),
            (3, lambda: section_slow_llm(run)),
            (4, lambda: section_hung_llm(run)),
            (5, lambda: section_memory(run)),
        ]
        sections.append((6, lambda: asyncio.to_thread(section_cli, run, templates)))
        for number, section in sections:
            if number not in args.only:
                continue
            started = time.monotonic()
            try:
                await section()
            except Exception as exc:  # print and go on: the other figures still count
                print(f"  section {number} failed: {type(exc).__name__}: {exc}", flush=True)
            run.log_errors()
            print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
    finally:
        if scratch is not None:
            with contextlib.suppress(Exception):
                pg_admin(args.postgres, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def summary(report: Report, engines: list[str], machine: str) -> None:
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    print(f"\n### Benchmarks ({today}, {machine})\n")
    print("| figure | target | " + " | ".join(engines) + " |")
    print("|---|---|" + "---|" * len(engines))
    for key, label, target in ROWS:
        cells = [report.cells.get(e, {}).get(key) for e in engines]
        if all(c is None for c in cells):
            continue
        shown = [(c.text + c.mark()) if c else "—" for c in cells]
        print(f"| {label} | {target} | " + " | ".join(shown) + " |")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--engine", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--postgres", default=PG_DEFAULT, help="a PostgreSQL server URL")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--only", default="1,2,3,4,5,6", help="sections to run, e.g. 1,3")
    parser.add_argument("--messages", type=int, help="section 5 (default 10000; quick 500)")
    parser.add_argument("--visitors", type=int, help="sections 3 and 4 (default 200; quick 50)")
    parser.add_argument("--turns", type=int, help="section 1 per round (default 600; quick 120)")
    parser.add_argument("--rounds", type=int, help="section 1 rounds (default 3; quick 2)")
    parser.add_argument("--seconds", type=float, help="section 3 length (default 15; quick 4)")
    parser.add_argument("--wrk-seconds", type=float, help="section 2 (default 3; quick 1)")
    parser.add_argument("--cli-rounds", type=int, help="section 6 (default 5; quick 2)")
    parser.add_argument("--concurrency", type=int, default=8, help="section 1")
    parser.add_argument("--memory-concurrency", type=int, default=32, help="section 5")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers to a core")
    parser.add_argument(
        "--boost",
        type=int,
        metavar="NICE",
        help="run the servers at this niceness (e.g. -10, as root) so other jobs on a shared "
        "machine intrude less on the wall-clock sections 3 and 4",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folders (logs)")
    args = parser.parse_args()
    defaults = {
        "messages": (10_000, 500),
        "visitors": (200, 50),
        "turns": (600, 120),
        "rounds": (3, 2),
        "seconds": (15.0, 4.0),
        "wrk_seconds": (3.0, 1.0),
        "cli_rounds": (5, 2),
    }
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    args.only = {int(part) for part in args.only.split(",") if part.strip()}
    return args


async def main() -> None:
    args = parse_args()
    started = time.monotonic()
    available = sorted(os.sched_getaffinity(0))
    server_cpus = bench_cpus = None
    if len(available) >= 2 and not args.no_pin:
        server_cpus, bench_cpus = {available[-1]}, set(available[:-1])
        os.sched_setaffinity(0, bench_cpus)  # before any thread: children inherit it
    # `python -m` and `-c` put the working directory first on sys.path, and the CLI reads
    # ./.env: from a checkout's root, the children would run that checkout's tcai, not the
    # one installed in this interpreter's venv. Every child starts in an empty folder.
    neutral = tempfile.mkdtemp(prefix="tcai-bench-cwd-")
    os.chdir(neutral)
    version = tcai(dict(os.environ), "--version", check=False).stdout.strip()
    where = subprocess.run(
        [sys.executable, "-c", "import tcai; print(tcai.__file__)"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    machine = f"{os.cpu_count()} cores"
    pinning = (
        f"servers pinned to cpu{available[-1]}, this load generator to the rest"
        if server_cpus
        else "no pinning"
    )
    if args.boost is not None:
        pinning += f", servers at nice {args.boost}"
    print(f"tcai daemon bench: {version} from {Path(where).parent}, {machine}, {pinning}")
    engines = []
    if args.engine in ("sqlite", "both"):
        engines.append("SQLite")
    if args.engine in ("postgres", "both"):
        why = pg_reachable(args.postgres)
        if why is None:
            engines.append("PostgreSQL")
        else:
            print(f"PostgreSQL skipped: {args.postgres} does not answer ({why})")
    wrk = None
    if 2 in args.only:
        wrk = ensure_wrk()
        print(f"section 2 load: {wrk or 'no wrk; an aiohttp load generator in its own process'}")
    report = Report()
    for index, engine in enumerate(engines):
        await run_engine(engine, args, report, (server_cpus, bench_cpus), wrk, index == 0)
    summary(report, engines, machine)
    os.chdir(HERE)
    shutil.rmtree(neutral, ignore_errors=True)
    print(f"\n(run took {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    asyncio.run(main())
