"""The bare aiohttp baseline for bench/daemon_bench.py, run as its own process.

A tiny aiohttp app on 127.0.0.1 (a free port, printed on the first line of stdout once
it listens): `GET /` answers `{"status": "ok"}` (the counterpart of `/api/health`) and
`POST /` parses a JSON body and answers a small JSON object (the counterpart of a chat
turn, minus everything tcai does). No middleware, no access log: the cost of aiohttp
itself, which the daemon's figures are divided by.
Usage: python bench/bare_server.py
"""

from __future__ import annotations

import asyncio

from aiohttp import web


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def chat(request: web.Request) -> web.Response:
    body = await request.json()
    session = body.get("session_id") if isinstance(body, dict) else None
    return web.json_response({"reply": "ok", "session_id": session, "source": "bare"})


async def main() -> None:
    app = web.Application()
    app.router.add_get("/", health)
    app.router.add_post("/", chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(port, flush=True)
    await asyncio.Event().wait()  # until SIGTERM


if __name__ == "__main__":
    asyncio.run(main())
