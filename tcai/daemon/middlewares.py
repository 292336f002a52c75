"""The daemon's one middleware: request id and access log (with metrics), the request
timeout, the one error shape, CORS for allowed widget origins, and the security headers
every response carries."""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from tcai.daemon.keys import CLIENTS, METRICS, SETTINGS
from tcai.errors import RateLimited, TcaiError
from tcai.logs import AccessLog, anonymise_ip, request_id_var

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_PROCESS = secrets.token_hex(4)
_SEQUENCE = itertools.count()
"""Request ids: 16 hex digits, a random prefix per process and a counter, unique without
a system call per request (they name a request in the logs; they are not secrets)."""
REQUEST_ID = web.RequestKey("request_id", str)
ARRIVED = web.RequestKey("arrived", float)
"""`time.monotonic()` when the request reached the first middleware (budgets count from it)."""
CORS_ORIGIN = web.RequestKey("cors_origin", str)
CLIENT = web.RequestKey("client", str)
"""The client's address: the peer, or the one a trusted proxy names (tcai/daemon/remote.py)."""
log = logging.getLogger("tcai.daemon")

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
    504: "timeout",
}
PUBLIC_UNAVAILABLE = "This service is temporarily unavailable; please try again in a moment."
HTTP_MESSAGES = {
    404: "There is nothing at this address.",
    405: "This method is not allowed here.",
    413: "The request body is too large (16 KiB at most).",
}


def error_response(
    request: web.Request,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}, "request_id": request.get(REQUEST_ID, "")},
        status=status,
        headers=headers,
    )


def _route(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


def make_middlewares(
    access_log: AccessLog,
) -> list[Callable[..., Awaitable[web.StreamResponse]]]:
    """One middleware doing, outermost first, what five used to: request id, arrival
    time, metrics and access log; the request timeout; the one error shape; CORS for
    allowed widget origins; the security headers every response carries. One layer
    instead of five is a third of `/api/health`'s CPU (bench/daemon_bench.py)."""

    @web.middleware
    async def door(request: web.Request, handler: Handler) -> web.StreamResponse:
        incoming = request.headers.get("X-Request-Id", "")
        rid = (
            incoming
            if 8 <= len(incoming) <= 64 and incoming.replace("-", "").isalnum()
            else f"{_PROCESS}{next(_SEQUENCE):08x}"
        )
        started = time.monotonic()
        request[REQUEST_ID] = rid
        request[ARRIVED] = started
        request_id_var.set(rid)
        app = request.app
        request[CLIENT] = app[CLIENTS].of(request)
        metrics = app[METRICS]
        metrics.in_flight.inc()
        status = 500
        try:
            response = await _answer(request, handler, app[SETTINGS].request_timeout_ms)
            status = response.status
            if not response.prepared:
                headers = response.headers
                origin = request.get(CORS_ORIGIN)
                if origin:
                    headers["Access-Control-Allow-Origin"] = origin
                    headers["Access-Control-Expose-Headers"] = "X-Request-Id, Retry-After"
                headers.add("Vary", "Origin")
                headers["X-Request-Id"] = rid
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
                headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
            return response
        finally:
            metrics.in_flight.dec()
            elapsed = time.monotonic() - started
            route = _route(request)
            metrics.served(route, request.method, status, elapsed)
            if route != "/api/health":
                access_log.write(
                    "request",
                    request_id=rid,
                    method=request.method,
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 1),
                    ip=anonymise_ip(request[CLIENT]),
                )

    return [door]


async def _answer(request: web.Request, handler: Handler, timeout_ms: int) -> web.StreamResponse:
    """The handler's response, or the error shape for whatever it raised; past the
    request timeout, 504. The health route has its own two-second bound on the database
    probe and skips the timer (docs/http-api.md)."""
    try:
        if request.path == "/api/health":
            return await handler(request)
        async with asyncio.timeout(timeout_ms / 1000):
            return await handler(request)
    except TimeoutError:
        return error_response(
            request, 504, "timeout", "The request took too long; please try again."
        )
    except TcaiError as exc:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        if exc.http_status >= 500:
            # The detail (a database host, a configuration problem) is for the operator's
            # log; the public gets a sentence that names nothing inside.
            log.error("%s on %s: %s", exc.code, _route(request), exc.message)
            return error_response(request, exc.http_status, exc.code, PUBLIC_UNAVAILABLE, headers)
        return error_response(request, exc.http_status, exc.code, exc.message, headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = HTTP_CODES.get(exc.status, "error")
        message = HTTP_MESSAGES.get(exc.status, exc.reason)
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(request, exc.status, code, message, headers)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("unhandled error on %s", _route(request))
        return error_response(
            request, 500, "internal_error", "Something went wrong on our side; please try again."
        )
