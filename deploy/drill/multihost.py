"""The multi-host drill: two daemon hosts behind a reverse proxy behave as one.

Two network namespaces (ip netns + veth pairs) are the two hosts, each running
`tcai serve` on its own address (10.77.1.2 and 10.77.2.2). The root namespace plays the
network around them: a small round-robin reverse proxy on 127.0.0.1 that appends the
client to X-Forwarded-For (the daemons trust 10.77.0.0/16 as proxies), a webhook
receiver, and forwarders to this machine's PostgreSQL and Redis (which listen on
127.0.0.1 only). Both daemons use one scratch PostgreSQL database and one Redis, and both
run their outbox delivery worker. The drill shows, and fails (exit 1) unless:

1. the kill switch (`tcai bots pause`, then `resume`) reaches both hosts within 2 s;
2. one rate limit across both: a visitor's 8 messages through the proxy, alternating
   hosts, get exactly CHAT_RATE_LIMIT (5) answers, not 5 per host;
3. each lead is stored once: visitors through the proxy, plus the same person writing
   to both hosts at the same moment, leave one lead per phone number;
4. each webhook is delivered exactly once: every `lead.created` event reaches the
   receiver once, though both hosts' outbox workers compete for it.

Needs root and iproute2 (it makes and removes namespaces `tcai-drill-h1/h2`).
Usage: python deploy/drill/multihost.py [--postgres postgresql://postgres@127.0.0.1:5432/test]
       [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import sqlalchemy as sa
from aiohttp import web

HOSTS = (("tcai-drill-h1", "10.77.1.1", "10.77.1.2"), ("tcai-drill-h2", "10.77.2.1", "10.77.2.2"))
GATEWAY = HOSTS[0][1]
"""The root namespace's address the hosts reach the database, Redis and the webhook at."""
DAEMON_PORT = 5000
ORIGIN = "http://localhost:8080"  # a development origin every bot allows
RATE = 5
failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        failures.append(what)


def sh(*args: str, check_rc: bool = True) -> None:
    subprocess.run(args, check=check_rc, capture_output=True)


def teardown_network() -> None:
    for ns, _gw, _addr in HOSTS:
        sh("ip", "netns", "del", ns, check_rc=False)
        sh("ip", "link", "del", f"veth-{ns[-2:]}", check_rc=False)


def setup_network() -> None:
    teardown_network()
    for ns, gateway, address in HOSTS:
        outside, inside = f"veth-{ns[-2:]}", f"vein-{ns[-2:]}"
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        sh("ip", "link", "set", inside, "netns", ns)
        sh("ip", "addr", "add", f"{gateway}/24", "dev", outside)
        sh("ip", "link", "set", outside, "up")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{address}/24", "dev", inside)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", inside, "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        sh("ip", "netns", "exec", ns, "ip", "route", "add", "default", "via", gateway)


# ---- the network around the hosts (all in this process's event loop) --------------------


async def forward(listen_host: str, target: tuple[str, int]) -> asyncio.Server:
    """A TCP forwarder: the hosts reach a service that listens on 127.0.0.1 only."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except asyncio.CancelledError:  # the drill is over: close quietly
            writer.close()
            up_writer.close()

    return await asyncio.start_server(handle, listen_host, 0)


class Proxy:
    """A small round-robin reverse proxy that appends its peer to X-Forwarded-For."""

    def __init__(self, upstreams: list[str]) -> None:
        self.upstreams = upstreams
        self.turn = 0
        self.served = Counter[str]()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        upstream = self.upstreams[self.turn % len(self.upstreams)]
        self.turn += 1
        self.served[upstream] += 1
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in ("host", "connection", "content-length", "transfer-encoding")
        }
        chain = request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{chain}, {request.remote}" if chain else str(request.remote)
        headers["X-Forwarded-Proto"] = "http"
        body = await request.read()
        async with self.client.request(
            request.method, upstream + request.rel_url.raw_path_qs, headers=headers, data=body
        ) as answer:
            payload = await answer.read()
            keep = {
                k: v
                for k, v in answer.headers.items()
                if k.lower() not in ("content-length", "transfer-encoding", "connection")
            }
            keep["X-Drill-Upstream"] = upstream
            return web.Response(body=payload, status=answer.status, headers=keep)

    client: aiohttp.ClientSession


class Receiver:
    """The bot's webhook: records every delivery by event id."""

    def __init__(self) -> None:
        self.deliveries = Counter[str]()
        self.types: dict[str, str] = {}

    async def handle(self, request: web.Request) -> web.Response:
        event = json.loads(await request.read())
        self.deliveries[event["id"]] += 1
        self.types[event["id"]] = event["type"]
        return web.Response(status=204)


async def serve(handler, host: str) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


# ---- the drill -------------------------------------------------------------------------


def tcai(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tcai", *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"tcai {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


@contextlib.asynccontextmanager
async def daemons(env: dict[str, str], work: Path) -> AsyncIterator[list[subprocess.Popen]]:
    processes = []
    for ns, _gateway, address in HOSTS:
        log = (work / f"{ns}.log").open("wb")
        host_env = {**env, "LOG_DIR": str(work / ns)}
        processes.append(
            subprocess.Popen(
                [
                    *("ip", "netns", "exec", ns, sys.executable, "-m", "tcai", "serve"),
                    *("--host", address, "--port", str(DAEMON_PORT)),
                ],
                env=host_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    try:
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


async def wait_healthy(client: aiohttp.ClientSession, work: Path) -> None:
    deadline = time.monotonic() + 30
    for _ns, _gw, address in HOSTS:
        while True:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with client.get(f"http://{address}:{DAEMON_PORT}/api/health") as response:
                    if response.status == 200:
                        break
            if time.monotonic() > deadline:
                logs = "".join(p.read_text()[-2000:] for p in work.glob("*.log"))
                raise SystemExit(f"a host did not become healthy:\n{logs}")
            await asyncio.sleep(0.1)


async def widget_status(client: aiohttp.ClientSession, address: str, path: str) -> str:
    async with client.get(
        f"http://{address}:{DAEMON_PORT}{path}", headers={"Origin": ORIGIN}
    ) as response:
        body = await response.json()
        return str(body.get("status", "active"))


async def kill_switch(env, client, bot: str, config_path: str) -> None:
    for command, wanted in (("pause", "paused"), ("resume", "active")):
        args = ["bots", command, bot] + (
            ["--reason", "multi-host drill"] if command == "pause" else []
        )
        tcai(env, *args)
        done = time.monotonic()
        reached = {}
        while len(reached) < len(HOSTS) and time.monotonic() - done < 5:
            for ns, _gw, address in HOSTS:
                if (
                    ns not in reached
                    and await widget_status(client, address, config_path) == wanted
                ):
                    reached[ns] = time.monotonic() - done
            await asyncio.sleep(0.05)
        slowest = max(reached.values(), default=99.0)
        times = ", ".join(f"{ns[-2:]} {seconds:.2f} s" for ns, seconds in sorted(reached.items()))
        check(
            len(reached) == len(HOSTS) and slowest <= 2.0,
            f"kill switch `tcai bots {command}` reached both hosts within 2 s ({times})",
        )


async def chat(client, base: str, path: str, token: str, message: str, session: str, **headers):
    async with client.post(
        base + path.replace("/widget/config/", "/chat/"),
        json={"message": message, "session_id": session},
        headers={"Origin": ORIGIN, "Authorization": f"Bearer {token}", **headers},
    ) as response:
        await response.read()
        return response.status, response.headers.get("X-Drill-Upstream", "")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("ip") is None:
        raise SystemExit("the drill needs root and iproute2 (ip netns)")

    pg, redis_url = urlsplit(args.postgres), urlsplit(args.redis)
    scratch = f"tcai_drill_{uuid.uuid4().hex[:8]}"
    slug = f"drill-{uuid.uuid4().hex[:6]}"  # Redis windows of this run's own
    admin = sa.create_engine(
        args.postgres.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{scratch}"')
    setup_network()
    runners: list[web.AppRunner] = []
    servers: list[asyncio.Server] = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            pg_forward = await forward(GATEWAY, (pg.hostname or "127.0.0.1", pg.port or 5432))
            redis_forward = await forward(
                GATEWAY, (redis_url.hostname or "127.0.0.1", redis_url.port or 6379)
            )
            servers += [pg_forward, redis_forward]
            pg_port = pg_forward.sockets[0].getsockname()[1]
            redis_port = redis_forward.sockets[0].getsockname()[1]
            receiver = Receiver()
            runner, hook_port = await serve(receiver.handle, GATEWAY)
            runners.append(runner)

            user = f"{pg.username or 'postgres'}@"
            local_url = (
                f"postgresql://{user}{pg.hostname or '127.0.0.1'}:{pg.port or 5432}/{scratch}"
            )
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CHAT_"))},
                "TCAI_ENV": "development",
                "DATABASE_URL": local_url,
                "WIDGET_SECRET": uuid.uuid4().hex + uuid.uuid4().hex,
                "SESSION_SECRET": uuid.uuid4().hex + uuid.uuid4().hex,
                "WEBHOOK_ALLOW_PRIVATE": "true",
                "CHAT_RATE_LIMIT": f"{RATE}/minute",
            }
            os.chdir(work)  # no .env of the repository is read
            tcai(env, "init")
            tcai(env, "templates", "seed")
            tcai(
                env,
                *("clients", "create", "--template", "barber", "--slug", slug),
                *("--name", "Drill Barber", "--phone", "+1 772 555 0100", "--plan", "enterprise"),
            )
            bot = f"{slug}_main"
            # Plain http to a private address: WEBHOOK_ALLOW_PRIVATE lets the hosts deliver
            # it (a development setting, refused in production).
            hook = work / "hook.json"
            hook.write_text(json.dumps({"webhook_url": f"http://{GATEWAY}:{hook_port}/hook"}))
            tcai(env, "bots", "set", bot, "--file", str(hook))
            host_env = {
                **env,
                "DATABASE_URL": f"postgresql://{user}{GATEWAY}:{pg_port}/{scratch}",
                "REDIS_URL": f"redis://{GATEWAY}:{redis_port}/{(redis_url.path or '/0')[1:] or 0}",
                "TRUSTED_PROXIES": "10.77.0.0/16",
            }
            proxy = Proxy([f"http://{address}:{DAEMON_PORT}" for _ns, _gw, address in HOSTS])
            runner, proxy_port = await serve(proxy.handle, "127.0.0.1")
            runners.append(runner)
            base = f"http://127.0.0.1:{proxy_port}"
            config_path = f"/api/widget/config/{slug}/{bot}"
            print(
                f"multi-host drill: 2 hosts (netns {HOSTS[0][2]}, {HOSTS[1][2]}) behind a proxy "
                f"on {base}; PostgreSQL database {scratch}; Redis; bot {bot}",
                flush=True,
            )
            async with (
                daemons(host_env, work),
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as client,
            ):
                proxy.client = client
                await wait_healthy(client, work)
                async with client.get(base + config_path, headers={"Origin": ORIGIN}) as answer:
                    token = (await answer.json())["token"]

                await kill_switch(env, client, bot, config_path)

                statuses = [
                    await chat(
                        client, base, config_path, token, "what are your hours?", "s-one-visitor"
                    )
                    for _ in range(8)
                ]
                answered = sum(1 for status, _up in statuses if status == 200)
                hosts_used = len({up for _status, up in statuses})
                check(
                    answered == RATE and hosts_used == 2,
                    f"one rate limit across both hosts: {answered}/8 answered over {hosts_used} "
                    f"hosts (limit {RATE}/minute; per-host counting would answer 8)",
                )

                phones = [f"772-555-{n:04d}" for n in range(1200, 1220)]
                async with asyncio.TaskGroup() as group:
                    for n, phone in enumerate(phones):
                        group.create_task(
                            chat(
                                client,
                                base,
                                config_path,
                                token,
                                f"I'm Sam, call me at {phone}",
                                f"s-lead-{n:04d}",
                            )
                        )
                twins = [f"772-555-{n:04d}" for n in range(1300, 1305)]
                async with asyncio.TaskGroup() as group:
                    for n, phone in enumerate(twins):
                        for ns, _gw, address in HOSTS:  # the same person, both hosts at once
                            group.create_task(
                                chat(
                                    client,
                                    f"http://{address}:{DAEMON_PORT}",
                                    config_path,
                                    token,
                                    f"I'm Kim, call me at {phone}",
                                    f"s-twin-{ns[-2:]}-{n:04d}",
                                )
                            )
                db = sa.create_engine(
                    local_url.replace("postgresql://", "postgresql+psycopg://", 1)
                )
                with db.connect() as conn:
                    stored = Counter(
                        phone for (phone,) in conn.execute(sa.text("SELECT phone FROM lead"))
                    )
                wanted = {"+1" + p.replace("-", "") for p in phones + twins}
                check(
                    set(stored) == wanted and all(n == 1 for n in stored.values()),
                    f"each lead stored once: {len(stored)} leads for {len(wanted)} numbers "
                    f"({len(phones)} through the proxy, {len(twins)} given to both hosts at once)",
                )

                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    with db.connect() as conn:
                        pending = conn.execute(
                            sa.text("SELECT count(*) FROM outbox WHERE status = 'pending'")
                        ).scalar_one()
                    if pending == 0:
                        break
                    await asyncio.sleep(0.2)
                await asyncio.sleep(1.0)  # a duplicate, if there were one, would arrive now
                with db.connect() as conn:
                    queued = [
                        event_id
                        for (event_id,) in conn.execute(
                            sa.text("SELECT event_id FROM outbox WHERE channel = 'webhook'")
                        )
                    ]
                db.dispose()
                twice = [e for e, n in receiver.deliveries.items() if n > 1]
                check(
                    set(receiver.deliveries) == set(queued) and not twice and queued,
                    f"each webhook delivered exactly once: {len(queued)} events queued, "
                    f"{sum(receiver.deliveries.values())} deliveries, {len(twice)} duplicates",
                )
                served = ", ".join(
                    f"{up.split('//')[1]} {n}" for up, n in sorted(proxy.served.items())
                )
                print(f"  requests through the proxy per host: {served}")
    finally:
        for runner in runners:
            await runner.cleanup()
        for server in servers:
            server.close()
        teardown_network()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        admin.dispose()
    if failures:
        print(f"multi-host drill FAILED: {len(failures)} check(s)")
        raise SystemExit(1)
    print("multi-host drill passed")


if __name__ == "__main__":
    asyncio.run(main())
