"""The daemon's middlewares, outermost first: request id and access log (with metrics),
CORS for allowed widget origins, the one error shape, the request timeout, and the
security headers every response carries."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from tcai.daemon.keys import METRICS, SETTINGS
from tcai.errors import RateLimited, TcaiError
from tcai.logs import AccessLog, anonymise_ip, request_id_var

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID = web.RequestKey("request_id", str)
ARRIVED = web.RequestKey("arrived", float)
"""`time.monotonic()` when the request reached the first middleware (budgets count from it)."""
CORS_ORIGIN = web.RequestKey("cors_origin", str)
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
    @web.middleware
    async def request_id_and_log(request: web.Request, handler: Handler) -> web.StreamResponse:
        incoming = request.headers.get("X-Request-Id", "")
        rid = (
            incoming
            if 8 <= len(incoming) <= 64 and incoming.replace("-", "").isalnum()
            else secrets.token_hex(8)
        )
        started = time.monotonic()
        request[REQUEST_ID] = rid
        request[ARRIVED] = started
        request_id_var.set(rid)
        metrics = request.app[METRICS]
        metrics.in_flight.inc()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        finally:
            metrics.in_flight.dec()
            elapsed = time.monotonic() - started
            route = _route(request)
            metrics.requests.labels(route, request.method, str(status)).inc()
            metrics.latency.labels(route).observe(elapsed)
            if route != "/api/health":
                access_log.write(
                    "request",
                    request_id=rid,
                    method=request.method,
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 1),
                    ip=anonymise_ip(request.remote),
                )

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        origin = request.get(CORS_ORIGIN)
        if origin and not response.prepared:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = "X-Request-Id, Retry-After"
        if not response.prepared:
            response.headers.add("Vary", "Origin")
            response.headers["X-Request-Id"] = request[REQUEST_ID]
        return response

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except TcaiError as exc:
            headers = (
                {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
            )
            if exc.http_status >= 500:
                # The detail (a database host, a configuration problem) is for the
                # operator's log; the public gets a sentence that names nothing inside.
                log.error("%s on %s: %s", exc.code, _route(request), exc.message)
                return error_response(
                    request, exc.http_status, exc.code, PUBLIC_UNAVAILABLE, headers
                )
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
                request,
                500,
                "internal_error",
                "Something went wrong on our side; please try again.",
            )

    @web.middleware
    async def timeout(request: web.Request, handler: Handler) -> web.StreamResponse:
        limit = request.app[SETTINGS].request_timeout_ms / 1000
        try:
            async with asyncio.timeout(limit):
                return await handler(request)
        except TimeoutError:
            return error_response(
                request, 504, "timeout", "The request took too long; please try again."
            )

    @web.middleware
    async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if not response.prepared:
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
            response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
            response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")
        return response

    return [request_id_and_log, cors, security_headers, errors, timeout]
