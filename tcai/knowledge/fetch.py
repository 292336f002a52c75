"""The crawler: the business's own site only, politely, within caps (docs/knowledge-import.md).

Every request — pages, robots.txt and each redirect hop — first goes through the
webhook SSRF guard (`tcai.delivery.webhooks.resolve_target`) and then connects only to
the addresses it vetted (`PinnedResolver`), so a link or a redirect to a private or
metadata address is refused however it is reached. Private addresses are allowed only
with the same setting as webhooks (`WEBHOOK_ALLOW_PRIVATE`, refused in production).

What is fetched: pages on the start URL's registrable domain, at most `max_pages`
requests, `max_page_bytes` read per page (the rest is dropped and reported) and
`max_total_bytes` in all, each request within `request_timeout_s` and the whole crawl
within `deadline_s`, one request at a time. robots.txt is obeyed per origin (RFC 9309: a
4xx robots.txt allows everything, a 5xx or unreachable one forbids everything).
Redirects are followed by hand, re-checked each hop: one that leaves the domain is
reported, never followed. Only text/html (and XHTML) bodies are read; anything else is
reported and its body left unread. This module does not parse pages: the caller's
`read` turns a page into the links to follow.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tcai import __version__
from tcai.knowledge.site import absolute, origin_of, same_site, site_of

if TYPE_CHECKING:
    from protego import Protego

ROBOTS_TOKEN = "tcai-knowledge-import"
HTML_TYPES = ("text/html", "application/xhtml+xml")
REDIRECTS = (301, 302, 303, 307, 308)
MAX_ROBOTS_BYTES = 500 * 1024  # RFC 9309 asks crawlers to read at least 500 KiB
CHUNK = 64 * 1024
# Links to these are never pages worth a request from the page budget.
ASSET_SUFFIXES = (
    ".css",
    ".js",
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".svg",
    ".webp",
    ".ico",
    ".woff",
    ".woff2",
    ".ttf",
    ".mp3",
    ".mp4",
    ".webm",
    ".zip",
)
# Pages that usually carry facts and answers are read first.
PRIORITY_WORDS = ("faq", "question", "contact", "hour", "about", "visit", "location", "service")
PRIORITY_WORDS_2 = ("price", "pricing", "menu", "book", "appointment")


@dataclass(frozen=True)
class Limits:
    max_pages: int = 20
    max_page_bytes: int = 2 * 1024 * 1024
    max_total_bytes: int = 10 * 1024 * 1024
    request_timeout_s: float = 10.0
    deadline_s: float = 90.0
    max_redirects: int = 5


@dataclass(frozen=True)
class Page:
    url: str
    """Where the page was read (after same-site redirects)."""
    html: str
    truncated: bool = False


@dataclass(frozen=True)
class Note:
    """Something the operator should know: a page not read, or read only in part."""

    url: str
    kind: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"url": self.url, "kind": self.kind, "message": self.message}


@dataclass
class Crawl:
    start_url: str
    site: str
    pages: list[Page] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    requests: int = 0
    bytes_read: int = 0


def user_agent(public_url: str | None) -> str:
    """The honest User-Agent: what we are, and where the operator can be found."""
    contact = f" (+{public_url.rstrip('/')})" if public_url else ""
    return f"{ROBOTS_TOKEN}/{__version__}{contact}"


def _priority(url: str) -> int:
    path = urlsplit(url).path.lower()
    if path in ("", "/"):
        return 0
    if any(word in path for word in PRIORITY_WORDS):
        return 1
    if any(word in path for word in PRIORITY_WORDS_2):
        return 2
    return 3


class _Stop(Exception):
    """A response the crawl does not read; carries the note that says why."""

    def __init__(self, note: Note) -> None:
        super().__init__(note.message)
        self.note = note


@dataclass
class _Body:
    url: str
    status: int
    content_type: str
    charset: str | None
    data: bytes
    truncated: bool


class Crawler:
    """One crawl of one site. `getaddrinfo` is the system's unless a test names its own
    local sites; `allow_private` comes from `WEBHOOK_ALLOW_PRIVATE`."""

    def __init__(
        self,
        start_url: str,
        *,
        limits: Limits,
        allow_private: bool,
        agent: str,
        getaddrinfo: Callable[..., Any] = socket.getaddrinfo,
    ) -> None:
        self.limits = limits
        self.allow_private = allow_private
        self.agent = agent
        self.getaddrinfo = getaddrinfo
        self.crawl = Crawl(start_url, site_of(start_url))
        self.robots: dict[str, Protego | bool | Note] = {}

    def note(self, url: str, kind: str, message: str) -> None:
        self.crawl.notes.append(Note(url, kind, message))

    async def run(self, read: Callable[[Page], list[str]]) -> Crawl:
        """Fetch pages breadth-first (fact-rich paths first) until a cap or the deadline."""
        crawl, limits = self.crawl, self.limits
        queue: list[tuple[int, int, str]] = [(0, 0, crawl.start_url)]
        seen = {crawl.start_url}
        order = 0
        try:
            async with asyncio.timeout(limits.deadline_s):
                while queue:
                    if crawl.requests >= limits.max_pages:
                        self.note(
                            queue[0][2],
                            "page_cap",
                            f"stopped at the page cap ({limits.max_pages} requests); "
                            f"{len(queue)} link(s) not read (raise it with --max-pages)",
                        )
                        break
                    if crawl.bytes_read >= limits.max_total_bytes:
                        self.note(
                            queue[0][2],
                            "byte_cap",
                            f"stopped at the total byte cap ({limits.max_total_bytes} bytes)",
                        )
                        break
                    queue.sort()
                    _prio, _order, url = queue.pop(0)
                    page = await self.page(url)
                    if page is None:
                        continue
                    crawl.pages.append(page)
                    seen.add(page.url)
                    for link in read(page):
                        if link in seen or not same_site(link, crawl.site):
                            continue
                        if urlsplit(link).path.lower().endswith(ASSET_SUFFIXES):
                            continue
                        seen.add(link)
                        order += 1
                        queue.append((_priority(link), order, link))
        except TimeoutError:
            self.note(
                crawl.start_url,
                "deadline",
                f"stopped at the deadline ({limits.deadline_s:g} s) after "
                f"{len(crawl.pages)} page(s)",
            )
        return crawl

    async def page(self, url: str) -> Page | None:
        """One page, or None with a note saying why it was not read."""
        self.crawl.requests += 1
        try:
            body = await self.fetch(url, cap=self.limits.max_page_bytes, robots=True)
        except _Stop as stop:
            self.crawl.notes.append(stop.note)
            return None
        if body.status >= 400:
            self.note(body.url, "http_error", f"HTTP {body.status}; not read")
            return None
        if body.content_type not in HTML_TYPES:
            shown = body.content_type or "no content type"
            self.note(body.url, "not_html", f"{shown}, not an HTML page; skipped")
            return None
        if body.truncated:
            self.note(
                body.url,
                "page_capped",
                f"larger than {self.limits.max_page_bytes} bytes; only the first "
                f"{self.limits.max_page_bytes} were read",
            )
        html = body.data.decode(body.charset or "utf-8", errors="replace")
        return Page(body.url, html, body.truncated)

    async def fetch(self, url: str, *, cap: int, robots: bool) -> _Body:
        """GET `url`, following same-site redirects by hand, each hop guarded."""
        for _hop in range(self.limits.max_redirects + 1):
            if robots and (refused := await self.refusal(url)) is not None:
                raise _Stop(refused)
            body = await self._get(url, cap, read_body=not robots)
            if body.status not in REDIRECTS:
                return body
            location = body.data.decode("utf-8", errors="replace")
            following = absolute(url, location) if location else None
            if following is None:
                raise _Stop(Note(url, "redirect", f"HTTP {body.status} without a usable Location"))
            if not same_site(following, self.crawl.site):
                raise _Stop(
                    Note(
                        url,
                        "off_site_redirect",
                        f"redirects to {following}, outside {self.crawl.site}; not followed",
                    )
                )
            url = following
        raise _Stop(Note(url, "redirect", f"more than {self.limits.max_redirects} redirects"))

    async def _get(self, url: str, cap: int, *, read_body: bool) -> _Body:
        import aiohttp

        from tcai.delivery.webhooks import PinnedResolver, TargetRefused, resolve_target

        scheme = urlsplit(url).scheme
        if scheme != "https" and not (scheme == "http" and self.allow_private):
            raise _Stop(Note(url, "refused", "only https pages are read; not fetched"))
        try:
            async with asyncio.timeout(self.limits.request_timeout_s):
                target = await resolve_target(url, self.allow_private, getaddrinfo=self.getaddrinfo)
                connector = aiohttp.TCPConnector(
                    resolver=PinnedResolver(target), use_dns_cache=False, force_close=True
                )
                headers = {
                    "User-Agent": self.agent,
                    "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1",
                }
                async with (
                    aiohttp.ClientSession(
                        connector=connector, trust_env=False, auto_decompress=True
                    ) as http,
                    http.get(url, headers=headers, allow_redirects=False) as response,
                ):
                    status = response.status
                    if status in REDIRECTS:
                        location = response.headers.get("Location", "")
                        return _Body(url, status, "", None, location.encode(), False)
                    content_type = response.content_type.lower()
                    wanted = read_body or content_type in HTML_TYPES
                    if status >= 400 or not wanted:
                        return _Body(url, status, content_type, None, b"", False)
                    data, truncated = await self._read(response, cap)
                    return _Body(url, status, content_type, response.charset, data, truncated)
        except TargetRefused as exc:
            raise _Stop(Note(url, "refused", f"{exc}; not fetched")) from None
        except TimeoutError:
            raise _Stop(
                Note(
                    url,
                    "timeout",
                    f"no complete answer within {self.limits.request_timeout_s:g} s; not read",
                )
            ) from None
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror or str(exc.os_error) if exc.os_error else str(exc)
            raise _Stop(Note(url, "unreachable", f"cannot connect ({reason})")) from None
        except (aiohttp.ClientError, OSError, UnicodeError) as exc:
            raise _Stop(
                Note(url, "failed", f"the request failed ({type(exc).__name__}: {exc})")
            ) from None

    async def _read(self, response: Any, cap: int) -> tuple[bytes, bool]:
        """At most `cap` bytes (and what the total budget has left); True when cut."""
        room = max(0, min(cap, self.limits.max_total_bytes - self.crawl.bytes_read))
        chunks: list[bytes] = []
        size = 0
        truncated = False
        async for chunk in response.content.iter_chunked(CHUNK):
            if size + len(chunk) > room:
                chunks.append(chunk[: room - size])
                size = room
                truncated = True
                break
            chunks.append(chunk)
            size += len(chunk)
        self.crawl.bytes_read += size
        return b"".join(chunks), truncated

    async def refusal(self, url: str) -> Note | None:
        """None when robots.txt lets our token fetch `url`; else the note that says why
        not. robots.txt is read once per origin."""
        origin = origin_of(url)
        if origin not in self.robots:
            self.robots[origin] = await self._robots(origin)
        rules = self.robots[origin]
        if isinstance(rules, Note):
            return Note(url, rules.kind, rules.message)
        if rules is True or (rules is not False and rules.can_fetch(url, ROBOTS_TOKEN)):
            return None
        return Note(url, "robots", "robots.txt forbids it; not fetched")

    async def _robots(self, origin: str) -> Protego | bool | Note:
        from protego import Protego

        robots_url = f"{origin}/robots.txt"
        try:
            body = await self.fetch(robots_url, cap=MAX_ROBOTS_BYTES, robots=False)
        except _Stop as stop:
            if stop.note.kind in ("off_site_redirect", "redirect"):
                return True  # RFC 9309 2.3.1.2: treated as unavailable, so no rules
            if stop.note.kind in ("unreachable", "timeout", "refused"):
                return stop.note  # the site itself cannot be reached: say that
            return Note(
                robots_url,
                "robots_unreachable",
                f"robots.txt could not be read ({stop.note.message}); nothing on {origin} "
                "is fetched (RFC 9309)",
            )
        if 400 <= body.status < 500:
            return True
        if body.status >= 500:
            return Note(
                robots_url,
                "robots_unreachable",
                f"robots.txt answered HTTP {body.status}; nothing on {origin} is fetched "
                "(RFC 9309)",
            )
        return Protego.parse(body.data.decode("utf-8", errors="replace"))
