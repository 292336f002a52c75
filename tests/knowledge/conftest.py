"""Fixture sites for the knowledge import, served by a real aiohttp server on 127.0.0.1.

One server answers for every test host name (`barber.test`, `www.barber.test`,
`evil.test`, …), picking the site by the Host header; the import resolves those names
to 127.0.0.1 through `local_names`, the getaddrinfo it accepts for tests. Static sites
live in sites/<name>/; the behaviours a file cannot show (redirects, a huge page, a slow
answer, non-HTML bodies) are handlers here. The server runs in its own thread so the
sync CLI (which calls asyncio.run) and the core can both reach it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

SITES = Path(__file__).parent / "sites"
HOSTS = {
    "barber.test": "barber",
    "www.barber.test": "barber",
    "restaurant.test": "restaurant",
    "login.test": "login",
    "redirect.test": "redirect",
    "www.redirect.test": "redirect",
    "evil.test": "evil",
    "huge.test": "huge",
    "files.test": "files",
    "slow.test": "slow",
    "down.test": "down",
}
HUGE_BYTES = 3 * 1024 * 1024
TYPES = {".html": "text/html", ".txt": "text/plain", ".pdf": "application/pdf"}


def local_names(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
    """getaddrinfo for the test hosts: every one is 127.0.0.1; anything else is unknown."""
    if host in HOSTS:
        return socket.getaddrinfo("127.0.0.1", port, *args, **kwargs)
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@dataclass
class SiteServer:
    default: str | None = None
    """The site served when the Host is an address, not a test name (the CLI tests)."""
    port: int = 0
    hits: list[tuple[str, str, str]] = field(default_factory=list)
    """(host, path, User-Agent) of every request."""
    _loop: asyncio.AbstractEventLoop | None = None
    _stop: asyncio.Event | None = None

    def url(self, host: str = "127.0.0.1", path: str = "/") -> str:
        return f"http://{host}:{self.port}{path}"

    def paths(self, host: str) -> list[str]:
        return [path for h, path, _ua in self.hits if h == host]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        host = (request.host or "").rsplit(":", 1)[0]
        self.hits.append((host, request.path, request.headers.get("User-Agent", "")))
        site = HOSTS.get(host) or self.default
        path = request.path
        port = self.port
        if site == "redirect":
            if path == "/" and host == "redirect.test":
                raise web.HTTPMovedPermanently(f"http://www.redirect.test:{port}/home")
            if path == "/away":
                raise web.HTTPFound(f"http://evil.test:{port}/welcome")
            if path == "/home":
                return _html(
                    "<h1>Redirect Barbers</h1><a href='/book'>Book</a>"
                    "<h2>Do you cut curly hair?</h2><p>Yes, every barber here does.</p>"
                )
            if path == "/book":
                raise web.HTTPFound(f"http://evil.test:{port}/phish")
        if site == "huge" and path == "/":
            head = "<html><body><h2>Do you sell gift cards?</h2><p>Yes, at the front desk.</p>"
            filler = "<p>" + "All about our shop. " * 50 + "</p>\n"
            body = head + filler * (HUGE_BYTES // len(filler)) + "</body></html>"
            return _html(body, whole=True)
        if site == "files":
            if path == "/":
                return _html(
                    "<a href='/menu.pdf'>Menu</a> <a href='/photo'>Photo</a>"
                    "<h2>Do you deliver?</h2><p>Within 3 miles, free over $30.</p>"
                )
            if path == "/menu.pdf":
                return web.Response(
                    body=b"%PDF-1.7\n" + b"0" * 1000, content_type="application/pdf"
                )
            if path == "/photo":
                return web.Response(body=b"\xff\xd8\xff" + b"0" * 1000, content_type="image/jpeg")
        if site == "slow" and path == "/":
            assert self._stop is not None
            await self._stop.wait()  # answers only when the server stops
            return _html("<h2>Too late?</h2><p>Yes.</p>")
        if site in ("barber", "restaurant", "login"):
            return _static(SITES / site, path)
        raise web.HTTPNotFound()

    def __enter__(self) -> SiteServer:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._stop = asyncio.Event()
            app = web.Application()
            app.router.add_route("GET", "/{tail:.*}", self._handle)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        assert ready.wait(10), "the fixture server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        loop, stop = self._loop, self._stop
        assert loop is not None and stop is not None
        loop.call_soon_threadsafe(stop.set)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)


def _html(body: str, *, whole: bool = False) -> web.Response:
    text = body if whole else f"<!doctype html><html><body>{body}</body></html>"
    return web.Response(text=text, content_type="text/html", charset="utf-8")


def _static(root: Path, path: str) -> web.Response:
    relative = path.lstrip("/") or "index.html"
    target = (root / relative).resolve()
    if root.resolve() not in target.parents or not target.is_file():
        raise web.HTTPNotFound()
    kind = TYPES.get(target.suffix, "application/octet-stream")
    return web.Response(body=target.read_bytes(), content_type=kind)


@pytest.fixture
def sites() -> Iterator[SiteServer]:
    with SiteServer() as server:
        yield server


@pytest.fixture
def barber_site() -> Iterator[SiteServer]:
    """The barber site, also answering for 127.0.0.1 (the CLI cannot rename hosts)."""
    with SiteServer(default="barber") as server:
        yield server


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, read, released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
