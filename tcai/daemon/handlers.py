"""Route handlers: parse the request, call the core, render. No rules live here."""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from tcai.access.tokens import (
    InvalidToken,
    mint_widget_token,
    token_target,
    verify_preview_token,
    verify_widget_token,
)
from tcai.bots.demo import DemoSite, list_demo_sites
from tcai.chat.booking import record_click
from tcai.chat.directory import CachedBot
from tcai.chat.pipeline import ChatRequest
from tcai.chat.replies import public_view
from tcai.daemon.keys import CHAT, DEMO, ENGINE, LIMITS, METRICS, PROBE, SETTINGS
from tcai.daemon.middlewares import (
    ARRIVED,
    CLIENT,
    CORS_ORIGIN,
    PUBLIC_UNAVAILABLE,
    REQUEST_ID,
    error_response,
)
from tcai.daemon.origins import (
    frame_ancestors,
    is_allowed,
    log_refused_origin,
    request_origin,
    self_origin,
)
from tcai.daemon.portal.sites import demo_groups, site_view, theme_css
from tcai.daemon.portal.web import render
from tcai.daemon.ratelimit import Refusal
from tcai.daemon.schemas import BookingClick, ChatMessage, WidgetConfig, parse_body
from tcai.errors import (
    DatabaseUnavailable,
    InvalidMessage,
    NotFound,
    OriginNotAllowed,
    RateLimited,
    TcaiError,
)

STATIC = Path(__file__).parent / "static"
WIDGET_FILES = {
    "embed.js": "application/javascript",
    "widget.js": "application/javascript",
    "widget.css": "text/css",
    "frame.html": "text/html",
    "page.css": "text/css",
}
FRIENDLY_LIMIT = "You're sending messages a little fast — please wait a moment and try again."
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,79}")
"""Matched whole (`fullmatch`: a `$` would let a trailing newline through)."""
"""Client and bot ids as provisioning makes them; anything else is a 404 before any look-up."""
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; frame-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


# ---- helpers ----------------------------------------------------------------------------


async def _bot(request: web.Request, client_id: str, bot_id: str) -> CachedBot:
    """The bot from the cache or the database; while the database is down, as this
    process last saw it (the chat engine then answers from its facts)."""
    if not (IDENTIFIER.fullmatch(client_id) and IDENTIFIER.fullmatch(bot_id)):
        raise NotFound("There is no assistant at this address.")
    return await request.app[CHAT].resolve_bot(client_id, bot_id)


def _check_origin(request: web.Request, bot: CachedBot) -> str:
    origin = request_origin(request)
    own = self_origin(request)
    if not is_allowed(origin, bot.allowed_origins, request.app[SETTINGS], own):
        log_refused_origin(request, bot.bot_id, origin)
        raise OriginNotAllowed("This website is not allowed to use this assistant.")
    assert origin is not None
    if origin != own:
        request[CORS_ORIGIN] = origin
    return origin


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("a widget token is required (Authorization: Bearer …)")
    return token.strip()


async def _json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, read last (after the cheap checks) and defensively:
    the declared charset must be UTF-8 (or none), the body is decoded and parsed by us,
    numbers are bounded and nesting is shallow, so no body a client sends can turn into
    a 500 (docs/http-api.md, "Bad requests")."""
    if request.content_type != "application/json":
        raise InvalidMessage("send JSON with Content-Type: application/json")
    charset = (request.charset or "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise InvalidMessage("send the JSON body as UTF-8")
    try:
        raw = await request.read()
        text = raw.decode("utf-8")
        body = json.loads(text, parse_int=_bounded_int, parse_constant=_no_constant)
    except web.HTTPException:
        raise
    except (ValueError, RecursionError, UnicodeDecodeError, RequestPayloadError):
        # RequestPayloadError: a body that does not decode as its Content-Encoding says.
        raise InvalidMessage("the body is not valid JSON") from None
    if not isinstance(body, dict) or _depth(body) > MAX_JSON_DEPTH:
        raise InvalidMessage("the body must be a JSON object of plain values")
    return body


MAX_JSON_DEPTH = 4
MAX_INT_DIGITS = 20


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError("number too long")
    return int(text)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any, level: int = 1) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def _visitor(request: web.Request) -> str:
    return f"{request[CLIENT]}|{request.headers.get('User-Agent', '')[:200]}"


def _refuse(request: web.Request, refusal: Refusal | None) -> None:
    """429 with the refusal's scope counted and its Retry-After (at most its window)."""
    if refusal is not None:
        request.app[METRICS].rate_limited.labels(refusal.scope).inc()
        raise RateLimited(FRIENDLY_LIMIT, retry_after=refusal.retry_after)


# ---- health and metrics ----------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    """Load balancers poll this hard: the document is the probe's, written once a second
    (tcai/daemon/probe.py)."""
    probe = request.app[PROBE]
    ok, _latency = await probe.check()
    return web.Response(
        body=probe.document, content_type="application/json", status=200 if ok else 503
    )


async def metrics(request: web.Request) -> web.Response:
    """The whole daemon's metrics, for the holder of METRICS_TOKEN or, with none set, for
    a loopback peer only; anyone else learns nothing (the 404 of an unknown path)."""
    from tcai.daemon.metrics import metrics_access

    token = request.app[SETTINGS].metrics_token
    secret = token.get_secret_value() if token is not None else None
    decision = metrics_access(secret, request.headers, request.remote)
    if decision == "hidden":
        raise web.HTTPNotFound()
    if decision == "unauthorized":
        return error_response(
            request,
            401,
            "invalid_token",
            "a metrics token is required (Authorization: Bearer <METRICS_TOKEN>)",
            {"WWW-Authenticate": 'Bearer realm="tcai-metrics"'},
        )
    body = request.app[METRICS].render()
    return web.Response(
        body=body,
        headers={
            "Content-Type": "text/plain; version=0.0.4; charset=utf-8",
            "Cache-Control": "no-store",
        },
    )


# ---- the widget API ----------------------------------------------------------------------


async def widget_config(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    client_id, bot_id = request.match_info["client_id"], request.match_info["bot_id"]
    _refuse(request, await request.app[LIMITS].hit_config(request[CLIENT]))
    bot = await _bot(request, client_id, bot_id)
    preview = request.query.get("preview")
    if preview:
        claims = verify_preview_token(settings, preview)
        if (claims.client_id, claims.bot_id) != (client_id, bot_id):
            raise InvalidToken("this preview link is for another bot")
        origin = request_origin(request) or self_origin(request)
        if origin != self_origin(request):
            log_refused_origin(request, bot_id, origin)
            raise OriginNotAllowed("Preview links work only on the preview page.")
    else:
        origin = _check_origin(request, bot)
    token, expires = mint_widget_token(settings, client_id, bot_id, origin)
    document = WidgetConfig.model_validate(
        {
            **public_view(bot),
            "token": token,
            "token_expires_at": datetime.fromtimestamp(expires, UTC),
        }
    )
    return web.Response(
        text=document.model_dump_json(),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def preflight(request: web.Request) -> web.Response:
    """CORS preflight for the widget API: allowed origins only."""
    client_id = request.match_info.get("client_id")
    bot_id = request.match_info.get("bot_id")
    origin = request_origin(request)
    settings = request.app[SETTINGS]
    own = self_origin(request)
    if client_id and bot_id:
        bot = await _bot(request, client_id, bot_id)
        allowed = is_allowed(origin, bot.allowed_origins, settings, own)
    else:
        allowed = is_allowed(origin, (), settings, own)
    if not allowed or origin is None:
        if client_id and bot_id:
            log_refused_origin(request, bot_id, origin)
        return error_response(
            request, 403, "origin_not_allowed", "This website is not allowed to use this assistant."
        )
    request[CORS_ORIGIN] = origin
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Content-Type, Accept",
            "Access-Control-Max-Age": "600",
        },
    )


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def chat(request: web.Request) -> web.StreamResponse:
    app = request.app
    settings = app[SETTINGS]
    client_id, bot_id = request.match_info["client_id"], request.match_info["bot_id"]
    bot: CachedBot | None
    try:
        bot = await _bot(request, client_id, bot_id)
    except DatabaseUnavailable:
        # A bot this process never saw, and no database to ask: the token (signed, and
        # issued only to an allowed origin) vouches for it, so the engine can still keep
        # the visitor's contact details (docs/chat-pipeline.md, "The database down").
        bot = None
    claims = verify_widget_token(settings, _bearer(request), client_id, bot_id)
    if bot is not None:
        origin = _check_origin(request, bot)
        allowed = origin in (claims.origin, self_origin(request)) and is_allowed(
            claims.origin, bot.allowed_origins, settings, self_origin(request)
        )
    else:
        origin = request_origin(request) or ""
        allowed = origin == claims.origin
        if allowed and origin != self_origin(request):
            request[CORS_ORIGIN] = origin
    if not allowed:
        log_refused_origin(request, bot_id, origin)
        raise OriginNotAllowed("This widget token was issued to another website.")
    ip = request[CLIENT]
    _refuse(request, await app[LIMITS].hit_address(ip, bot_id))
    turn = parse_body(ChatMessage, await _json_body(request))
    message, session_id = turn.message, turn.session_id
    verdict = await app[LIMITS].hit_chat(ip, bot_id, session_id)
    _refuse(request, verdict.refusal)
    if verdict.bot_budget_spent:
        app[METRICS].rate_limited.labels("bot").inc()
    chat_request = ChatRequest(
        client_id,
        bot_id,
        message,
        session_id or None,
        _visitor(request),
        request[ARRIVED],
        bot,
        use_llm=not verdict.bot_budget_spent,
    )

    if "text/event-stream" not in request.headers.get("Accept", ""):
        reply = await asyncio.shield(app[CHAT].handle(chat_request))
        _count(request, reply)
        return web.json_response(reply.as_dict(), status=reply.http_status)

    stream: web.StreamResponse | None = None

    async def start() -> web.StreamResponse:
        nonlocal stream
        if stream is None:
            stream = web.StreamResponse(
                headers={
                    "Content-Type": "text/event-stream; charset=utf-8",
                    "Cache-Control": "no-cache",
                    "X-Accel-Buffering": "no",
                    "X-Request-Id": request[REQUEST_ID],
                    **(
                        {"Access-Control-Allow-Origin": request[CORS_ORIGIN], "Vary": "Origin"}
                        if request.get(CORS_ORIGIN)
                        else {}
                    ),
                }
            )
            await stream.prepare(request)
        return stream

    gone = False

    async def send(data: bytes) -> None:
        # A visitor who closed the page must not cost the turn: the engine still writes
        # it (and their contact details) when nobody is listening any more.
        nonlocal gone
        if gone:
            return
        try:
            await (await start()).write(data)
        except (ConnectionResetError, ConnectionError, RuntimeError):
            gone = True

    async def on_chunk(text: str) -> None:
        await send(_sse("chunk", {"text": text}))

    try:
        reply = await asyncio.shield(app[CHAT].handle(chat_request, on_chunk=on_chunk))
    except TcaiError as exc:
        if stream is None:
            raise
        public = exc.message if exc.http_status < 500 else PUBLIC_UNAVAILABLE
        await send(_sse("error", {"error": {"code": exc.code, "message": public}}))
        return stream
    _count(request, reply)
    if stream is None:
        return web.json_response(reply.as_dict(), status=reply.http_status)
    await send(_sse("done", reply.as_dict()))
    if not gone:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await stream.write_eof()
    return stream


def _count(request: web.Request, reply: Any) -> None:
    metrics = request.app[METRICS]
    metrics.answers.labels(reply.source).inc()
    if reply.source == "failsafe" and reply.llm_failure:
        metrics.failsafe.inc()
        metrics.llm_errors.labels(reply.llm_failure).inc()
    if reply.lead_captured:
        metrics.leads.inc()
    if reply.source == "paused":
        metrics.kill_switch.inc()


async def booking_click(request: web.Request) -> web.Response:
    # Cheap checks first (the token, its bot, the origin, the rate limit); the body last.
    settings = request.app[SETTINGS]
    token = _bearer(request)
    client_id, bot_id = token_target(token)
    bot = await _bot(request, client_id, bot_id)
    _check_origin(request, bot)
    verify_widget_token(settings, token, client_id, bot_id)
    _refuse(request, await request.app[LIMITS].hit_address(request[CLIENT], bot_id))
    click = parse_body(BookingClick, await _json_body(request))
    url, session_id = click.url, click.session_id
    await asyncio.to_thread(record_click, request.app[ENGINE], bot_id, session_id, url)
    return web.Response(status=204)


# ---- widget assets, preview and demo pages ------------------------------------------------


async def widget_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in WIDGET_FILES:
        raise NotFound("There is nothing at this address.")
    path = STATIC / ("widget" if name != "page.css" else "pages") / name
    headers = {
        "Content-Type": f"{WIDGET_FILES[name]}; charset=utf-8",
        "Cache-Control": "public, max-age=300",
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    if name == "frame.html":
        headers["Cache-Control"] = "no-cache"
        client_id, bot_id = request.query.get("client", ""), request.query.get("bot", "")
        origins: tuple[str, ...] = ()
        try:
            origins = (
                (await _bot(request, client_id, bot_id)).allowed_origins
                if client_id and bot_id
                else ()
            )
        except TcaiError:
            origins = ()
        headers["Content-Security-Policy"] = (
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
            "img-src 'self' data:; base-uri 'none'; form-action 'none'; "
            + frame_ancestors(origins, request.app[SETTINGS])
        )
    return web.Response(body=path.read_bytes(), headers=headers)


def _page(title: str, body_html: str) -> web.Response:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{html.escape(title)}</title><link rel="stylesheet" href="/widget/page.css"></head>'
        f"<body>{body_html}</body></html>"
    )
    return web.Response(
        text=document,
        content_type="text/html",
        headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"},
    )


def _embed_tag(client_id: str, bot_id: str, preview: str | None = None) -> str:
    extra = f' data-preview="{html.escape(preview)}"' if preview else ""
    return (
        f'<script src="/widget/embed.js" data-client="{html.escape(client_id)}" '
        f'data-bot="{html.escape(bot_id)}"{extra} async></script>'
    )


async def preview_page(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    try:
        claims = verify_preview_token(request.app[SETTINGS], token)
        bot = await _bot(request, claims.client_id, claims.bot_id)
    except TcaiError:
        return _page(
            "Preview unavailable",
            "<main><h1>This preview link has expired or is not valid.</h1>"
            "<p>Ask for a new link.</p></main>",
        )
    name = html.escape(bot.config.business.name)
    body = (
        f"<main><h1>{name}</h1><p>This is a preview of {name}'s website assistant. "
        "Open the chat in the corner to try it.</p></main>"
        + _embed_tag(bot.client_id, bot.bot_id, token)
    )
    return _page(f"{bot.config.business.name} — assistant preview", body)


async def _demo_sites(request: web.Request) -> list[DemoSite]:
    if not request.app[DEMO]:
        raise NotFound("There is nothing at this address.")
    return await asyncio.to_thread(list_demo_sites, request.app[ENGINE])


async def demo_index(request: web.Request) -> web.Response:
    sites = await _demo_sites(request)
    return render(
        request,
        "demo_index.html",
        {"groups": demo_groups(sites), "count": len(sites)},
        csp=PAGE_CSP,
    )


async def demo_themes(request: web.Request) -> web.Response:
    """Each demo business's colours as a stylesheet (the pages carry no inline style)."""
    sites = await _demo_sites(request)
    return web.Response(
        text=theme_css(sites),
        content_type="text/css",
        headers={"Cache-Control": "public, max-age=60"},
    )


async def demo_page(request: web.Request) -> web.Response:
    slug = request.match_info["client_id"]
    site = next((s for s in await _demo_sites(request) if s.client_id == slug), None)
    if site is None:
        raise NotFound("There is no demo business with that name.")
    return render(request, "demo_site.html", {"site": site_view(site)}, csp=PAGE_CSP)
