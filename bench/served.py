"""A real `tcai serve` process for the benchmarks, on a free port of 127.0.0.1.

Shared by the benchmarks that load a daemon from their own process (the daemon and the
load generator never share an event loop). `cpus` pins the daemon to those cores and
`nice` sets its priority (on the new process at once, then on every thread of it once
it serves); `log_path` keeps its stderr for a post-mortem when it fails to start."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import IO

import aiohttp

ORIGIN = "http://127.0.0.1:9"  # a development origin: allowed outside production


def tcai(env: dict[str, str], *args: str) -> str:
    """Run a `tcai` command for a benchmark's setup; its stderr ends the run on failure."""
    done = subprocess.run(
        [sys.executable, "-m", "tcai", *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"tcai {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pin(pid: int, cpus: set[int] | None, nice: int | None = None) -> None:
    """Pin every thread of process `pid` to `cpus` and set its niceness (Linux keeps both
    per thread; threads started later inherit them). None: leave that alone."""
    if not cpus and nice is None:
        return
    try:
        tids = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        tids = [pid]
    for tid in tids:
        with contextlib.suppress(OSError):  # the thread ended meanwhile, or not permitted
            if cpus:
                os.sched_setaffinity(tid, cpus)
            if nice is not None:
                os.setpriority(os.PRIO_PROCESS, tid, nice)


class Daemon:
    """`async with Daemon(env) as d:` starts `tcai serve` and waits for its health."""

    def __init__(
        self,
        env: dict[str, str],
        client_id: str = "bench",
        bot_id: str = "",
        *,
        cpus: set[int] | None = None,
        nice: int | None = None,
        log_path: Path | None = None,
        start_timeout_s: float = 30.0,
    ) -> None:
        self.env = env
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.client_id, self.bot_id = client_id, bot_id or f"{client_id}_main"
        self.cpus, self.nice = cpus, nice
        self.log_path = log_path
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def __aenter__(self) -> Daemon:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tcai", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self._log if self._log is not None else subprocess.DEVNULL,
        )
        pin(self.process.pid, self.cpus, self.nice)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout_s
        async with aiohttp.ClientSession() as client:
            while loop.time() < deadline:
                if self.process.poll() is not None:
                    break
                try:
                    async with client.get(self.base + "/api/health") as response:
                        if response.status == 200:
                            pin(self.process.pid, self.cpus, self.nice)
                            return self
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        await self.__aexit__()
        where = f"; its stderr is in {self.log_path}" if self.log_path else ""
        raise RuntimeError(f"the daemon did not start{where}")

    async def __aexit__(self, *_exc: object) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, 60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    async def token(self) -> str:
        url = f"{self.base}/api/widget/config/{self.client_id}/{self.bot_id}"
        async with (
            aiohttp.ClientSession() as client,
            client.get(url, headers={"Origin": ORIGIN}) as response,
        ):
            return str((await response.json())["token"])

    async def headers(self) -> dict[str, str]:
        return {"Origin": ORIGIN, "Authorization": f"Bearer {await self.token()}"}

    def chat_url(self) -> str:
        return f"{self.base}/api/chat/{self.client_id}/{self.bot_id}"
