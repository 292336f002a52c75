"""A real `tcai serve` process for the benchmarks, on a free port of 127.0.0.1.

Shared by the benchmarks that load a daemon from their own process (the daemon and the
load generator never share an event loop)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import aiohttp

ORIGIN = "http://127.0.0.1:9"  # a development origin: allowed outside production


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Daemon:
    """`async with Daemon(env) as d:` starts `tcai serve` and waits for its health."""

    def __init__(self, env: dict[str, str], client_id: str = "bench", bot_id: str = "") -> None:
        self.env = env
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.client_id, self.bot_id = client_id, bot_id or f"{client_id}_main"
        self.process: subprocess.Popen[bytes] | None = None

    async def __aenter__(self) -> Daemon:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tcai", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        async with aiohttp.ClientSession() as client:
            for _ in range(300):
                try:
                    async with client.get(self.base + "/api/health") as response:
                        if response.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError("the daemon did not start")

    async def __aexit__(self, *_exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(60)

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
