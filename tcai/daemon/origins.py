"""Which web pages may use a bot's widget (docs/http-api.md).

Allowed: the bot's own list ∪ WIDGET_ALLOWED_ORIGINS ∪ the daemon's own origin (preview
and demo pages), and — outside production only — `http://localhost:*` and
`http://127.0.0.1:*`. The same answer drives CORS, the token's origin binding and the
`frame-ancestors` policy of the widget's frame page.

A refusal is logged (`widget origin refused`, with the bot and the origin) at most once a
minute per (bot, origin) pair, so a misconfigured site shows up in the log without a
visitor flood filling it; `tcai doctor BOT` reads these lines back (docs/cli.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import web

from tcai.config import Settings
from tcai.daemon.keys import ORIGIN_REFUSALS, SETTINGS

DEV_HOSTS = ("localhost", "127.0.0.1")
REFUSED_EVENT = "widget origin refused"
REFUSAL_LOG_SECONDS = 60.0
"""At most one log line per (bot, origin) pair per this long."""
REFUSAL_LOG_PAIRS = 4096
"""Pairs remembered for that throttle; beyond it, lines older than a minute go."""

log = logging.getLogger("tcai.daemon.widget")


def self_origin(request: web.Request) -> str:
    """The daemon's own origin, for its preview and demo pages: PUBLIC_URL when set; in
    production without it, none (""); elsewhere the request's scheme and Host. A Host
    header is the client's to write, so in production it never makes an origin ours
    (a script sending `Host: evil.example` with `Origin: http://evil.example` would
    otherwise be handed a widget token)."""
    settings = request.app[SETTINGS]
    if settings.public_url:
        return settings.public_url
    if settings.is_production:
        return ""
    return f"{request.scheme}://{request.host}".lower()


def request_origin(request: web.Request) -> str | None:
    """The page the request comes from: the Origin header, or our own origin for a
    same-origin request that carries none (browsers omit it on same-origin GETs)."""
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        return origin.strip().rstrip("/").lower()
    if request.headers.get("Sec-Fetch-Site") == "same-origin":
        return self_origin(request) or None
    return None


def is_dev_origin(origin: str) -> bool:
    parts = urlsplit(origin)
    return parts.scheme == "http" and parts.hostname in DEV_HOSTS


def is_allowed(
    origin: str | None, bot_origins: Iterable[str], settings: Settings, own: str
) -> bool:
    if not origin:
        return False
    if (
        (own and origin == own)
        or origin in bot_origins
        or origin in settings.widget_allowed_origins
    ):
        return True
    return not settings.is_production and is_dev_origin(origin)


def frame_ancestors(bot_origins: Iterable[str], settings: Settings) -> str:
    sources = ["'self'", *sorted(set(bot_origins) | set(settings.widget_allowed_origins))]
    if not settings.is_production:
        sources += ["http://localhost:*", "http://127.0.0.1:*"]
    return "frame-ancestors " + " ".join(sources)


def log_refused_origin(request: web.Request, bot_id: str, origin: str | None) -> None:
    """One warning line per (bot, origin) a minute: the throttle is a bounded dict on the
    application, like the door's refusal lines (tcai/daemon/protocol.py). A warning, so
    LOG_LEVEL=warning keeps it."""
    seen: dict[tuple[str, str | None], float] = request.app[ORIGIN_REFUSALS]
    pair, now = (bot_id, origin), time.monotonic()
    if now - seen.get(pair, float("-inf")) < REFUSAL_LOG_SECONDS:
        return
    if len(seen) >= REFUSAL_LOG_PAIRS:
        for key in [k for k, at in seen.items() if now - at >= REFUSAL_LOG_SECONDS]:
            del seen[key]
        if len(seen) >= REFUSAL_LOG_PAIRS:
            return  # a flood of distinct pairs within one minute: the first ones tell it
    seen[pair] = now
    log.warning(REFUSED_EVENT, extra={"fields": {"bot_id": bot_id, "origin": origin}})
