"""The published contract: an OpenAPI 3.1 document built from the router and the models.

`build_openapi(app)` walks the application's router, so a route exists in the document
exactly when the daemon serves it, and takes every body's schema from
`tcai/daemon/schemas.py`; the prose of each operation (what it answers, with which
status) is the table below. The document is built once per application, on its first
request, and served at `GET /api/openapi.json` (docs/http-api.md, "The contract").

Left out on purpose (`LEFT_OUT`): the owner portal (HTML pages behind a session cookie,
with errors as pages) and the demo pages (404 unless `tcai demo` started the daemon).
tests/daemon/test_openapi.py fails when any other route of the router is missing here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic.json_schema import models_json_schema

from tcai import __version__
from tcai.daemon.handlers import IDENTIFIER, WIDGET_FILES
from tcai.daemon.schemas import PUBLIC_MODELS, REQUEST_ID_PATTERN

REF = "#/components/schemas/{model}"
LEFT_OUT: dict[str, str] = {
    "/": "the owner portal",
    "/favicon.ico": "the owner portal",
    "/portal": "the owner portal",
    "/demo/": "the demo pages of `tcai demo`",
}
"""Paths, and prefixes ending in '/', that the document leaves out, with why."""


def left_out(path: str) -> str | None:
    """Why `path` (a canonical route) is not in the document, or None when it must be."""
    for prefix, why in LEFT_OUT.items():
        if path == prefix or (prefix != "/" and path.startswith(prefix.rstrip("/") + "/")):
            return why
    return None


def _schema(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _response(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


def _header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _json(description: str, schema: dict[str, Any], **headers: dict[str, Any]) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"X-Request-Id": _header("X-Request-Id"), **headers},
        "content": {"application/json": {"schema": schema}},
    }


def _text(description: str, *media_types: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"X-Request-Id": _header("X-Request-Id")},
        "content": {kind: {"schema": {"type": "string"}} for kind in media_types},
    }


def _error(description: str, **headers: dict[str, Any]) -> dict[str, Any]:
    return _json(description, _schema("Error"), **headers)


HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-Id": {
        "description": "The request's id (the client's own when it sent a valid one).",
        "required": True,
        "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    },
    "Allow": {
        "description": "The methods the path answers.",
        "required": True,
        "schema": {"type": "string"},
    },
    "WWW-Authenticate": {"required": True, "schema": {"type": "string"}},
}
RESPONSES: dict[str, dict[str, Any]] = {
    "BadRequest": _error("`invalid_message`: the body is not the JSON object described."),
    "InvalidToken": _error("`invalid_token` or `token_expired`."),
    "Forbidden": _error("`origin_not_allowed`, or `forbidden` for a suspended workspace."),
    "NotFound": _error("`not_found`: no such bot, file or path."),
    "MethodNotAllowed": _error(
        "`method_not_allowed`: another method on a known path.", Allow=_header("Allow")
    ),
    "PayloadTooLarge": _error("`payload_too_large`: a body over 16 KiB."),
    "UnsupportedMediaType": _error(
        "`unsupported_media_type`: kept for the web framework's own refusals; tcai's handlers "
        "answer a body of another type with 400 `invalid_message`."
    ),
    "RateLimited": _error("`rate_limited`.", **{"Retry-After": _header("Retry-After")}),
    "InternalError": _error(
        "`internal_error` (a bug) or `configuration_error` (no `WIDGET_SECRET`); the message "
        "names nothing inside."
    ),
    "Unavailable": _error("`database_unavailable` or `unavailable`."),
    "Timeout": _error("`timeout`: the request ran past `REQUEST_TIMEOUT_MS`."),
}


@dataclass(frozen=True)
class Operation:
    operation_id: str
    summary: str
    responses: dict[str, Any]
    description: str = ""
    body: str | None = None
    """The request body's schema (a model of tcai/daemon/schemas.py), JSON."""
    query: tuple[dict[str, Any], ...] = ()
    security: tuple[dict[str, list[str]], ...] | None = None
    tags: tuple[str, ...] = ("widget",)
    timed: bool = True
    """Under the request timer (504)."""


WIDGET_TOKEN: tuple[dict[str, list[str]], ...] = ({"widgetToken": []},)


def _preflight(name: str) -> Operation:
    return Operation(
        f"preflight{name}",
        "CORS preflight",
        {
            "204": {
                "description": "An allowed origin: the methods and headers it may use.",
                "headers": {
                    "X-Request-Id": _header("X-Request-Id"),
                    **{
                        header: {"required": True, "schema": {"type": "string"}}
                        for header in (
                            "Access-Control-Allow-Origin",
                            "Access-Control-Allow-Methods",
                            "Access-Control-Allow-Headers",
                            "Access-Control-Max-Age",
                        )
                    },
                },
            },
            "403": _response("Forbidden"),
            "404": _response("NotFound"),
            "503": _response("Unavailable"),
        },
        description="Answers 204 only to an allowed `Origin`; anything else is 403.",
        security=(),
    )


REPLY_OR_ERROR = {"oneOf": [_schema("ChatReply"), _schema("Error")]}
OPERATIONS: dict[str, dict[str, Operation]] = {
    "/api/health": {
        "get": Operation(
            "getHealth",
            "The daemon and its database",
            {
                "200": _json("The database answers.", _schema("Health")),
                "503": _json("The database does not answer (`degraded`).", _schema("Health")),
            },
            description="Polled by load balancers: never rate limited, no request timer.",
            tags=("operations",),
            timed=False,
        ),
    },
    "/metrics": {
        "get": Operation(
            "getMetrics",
            "Prometheus metrics",
            {
                "200": _text("The whole daemon's metrics.", "text/plain"),
                "401": _error(
                    "`invalid_token`: METRICS_TOKEN is set and was not sent.",
                    **{"WWW-Authenticate": _header("WWW-Authenticate")},
                ),
                "404": _response("NotFound"),
            },
            description=(
                "With METRICS_TOKEN set, for its bearer only; without, for a loopback peer "
                "that sends no proxy header (anyone else: the 404 of an unknown path)."
            ),
            security=({"metricsToken": []}, {}),
            tags=("operations",),
        ),
    },
    "/api/openapi.json": {
        "get": Operation(
            "getOpenapi",
            "This document",
            {"200": _json("The OpenAPI 3.1 document.", {"type": "object"})},
            tags=("operations",),
        ),
    },
    "/api/widget/config/{client_id}/{bot_id}": {
        "get": Operation(
            "getWidgetConfig",
            "The bot as the widget shows it, with a widget token",
            {
                "200": _json(
                    "The bot's look and a widget token; `status` is `paused` (with "
                    "`paused_message`) for a paused bot.",
                    _schema("WidgetConfig"),
                ),
                "401": _response("InvalidToken"),
                "403": _response("Forbidden"),
                "404": _response("NotFound"),
                "429": _response("RateLimited"),
                "503": _response("Unavailable"),
            },
            description=(
                "The page's `Origin` must be allowed for the bot; with `preview`, the request "
                "must come from the daemon's own origin instead."
            ),
            query=(
                {
                    "name": "preview",
                    "in": "query",
                    "required": False,
                    "description": "A preview token (the preview page sends it).",
                    "schema": {"type": "string"},
                },
            ),
        ),
        "options": _preflight("WidgetConfig"),
    },
    "/api/chat/{client_id}/{bot_id}": {
        "post": Operation(
            "postChat",
            "One visitor message, one reply",
            {
                "200": {
                    "description": (
                        "The reply. With `Accept: text/event-stream` the reply may come as "
                        "server-sent events instead: `chunk` events, then one `done` whose "
                        "data is the reply object (or one `error`)."
                    ),
                    "headers": {"X-Request-Id": _header("X-Request-Id")},
                    "content": {
                        "application/json": {"schema": _schema("ChatReply")},
                        "text/event-stream": {
                            "schema": {"type": "string"},
                            "x-events": {
                                "chunk": _schema("StreamChunk"),
                                "done": _schema("ChatReply"),
                                "error": _schema("StreamError"),
                            },
                        },
                    },
                },
                "400": _response("BadRequest"),
                "401": _response("InvalidToken"),
                "403": _response("Forbidden"),
                "404": _response("NotFound"),
                "413": _response("PayloadTooLarge"),
                "429": _json(
                    "A reply with `status: limit_reached` (the plan's quota, no Retry-After), "
                    "or the error `rate_limited` (with Retry-After).",
                    REPLY_OR_ERROR,
                    **{"Retry-After": {**HEADERS["Retry-After"], "required": False}},
                ),
                "503": _json(
                    "A reply with `status: paused` or `unavailable`, or the error "
                    "`database_unavailable` / `unavailable`.",
                    REPLY_OR_ERROR,
                ),
            },
            description=(
                "Bot, token, origin and rate limit are checked before the body is read. "
                "A refused turn (paused, over quota) is a reply object with its status."
            ),
            body="ChatMessage",
            security=WIDGET_TOKEN,
        ),
        "options": _preflight("Chat"),
    },
    "/api/booking/click": {
        "post": Operation(
            "postBookingClick",
            "The visitor followed a booking link",
            {
                "204": {
                    "description": "Recorded.",
                    "headers": {"X-Request-Id": _header("X-Request-Id")},
                },
                "400": _response("BadRequest"),
                "401": _response("InvalidToken"),
                "403": _response("Forbidden"),
                "404": _response("NotFound"),
                "413": _response("PayloadTooLarge"),
                "429": _response("RateLimited"),
                "503": _response("Unavailable"),
            },
            description="The token names the bot; the URL must be a booking link tcai would send.",
            body="BookingClick",
            security=WIDGET_TOKEN,
        ),
        "options": _preflight("BookingClick"),
    },
    "/widget/{name}": {
        "get": Operation(
            "getWidgetFile",
            "The widget's files",
            {
                "200": _text("The file.", *sorted(set(WIDGET_FILES.values()))),
                "404": _response("NotFound"),
            },
            description=(
                "`frame.html?client=…&bot=…` also sends a `frame-ancestors` policy naming "
                "the bot's allowed origins."
            ),
            query=tuple(
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "description": f"frame.html only: the {what} id.",
                    "schema": {"type": "string"},
                }
                for name, what in (("client", "client"), ("bot", "bot"))
            ),
        ),
    },
    "/preview/{token}": {
        "get": Operation(
            "getPreviewPage",
            "A preview page with the widget",
            {"200": _text("The page (or one saying the link is not valid).", "text/html")},
            tags=("pages",),
        ),
    },
}
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "client_id": {
        "description": "The workspace's slug.",
        "schema": {"type": "string", "pattern": f"^{IDENTIFIER.pattern}$"},
        "example": "fade-factory",
    },
    "bot_id": {
        "description": "The bot's id.",
        "schema": {"type": "string", "pattern": f"^{IDENTIFIER.pattern}$"},
        "example": "fade-factory_main",
    },
    "name": {
        "description": "A widget file.",
        "schema": {"type": "string", "enum": sorted(WIDGET_FILES)},
    },
    "token": {
        "description": "A preview token (`tcai preview-link`).",
        "schema": {"type": "string", "minLength": 1},
    },
}
SECURITY_SCHEMES = {
    "widgetToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            "The token of `GET /api/widget/config/{client_id}/{bot_id}`, for that bot and "
            "the origin it was issued to (one hour)."
        ),
    },
    "metricsToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "METRICS_TOKEN.",
    },
}
_PARAMETER = re.compile(r"\{([^}:]+)")


def _operation(op: Operation, method: str) -> dict[str, Any]:
    responses = dict(op.responses)
    responses.setdefault("500", _response("InternalError"))
    if op.timed:
        responses.setdefault("504", _response("Timeout"))
    document: dict[str, Any] = {
        "operationId": op.operation_id if method != "head" else "head" + op.operation_id[3:],
        "summary": op.summary,
        "tags": list(op.tags),
        "responses": dict(sorted(responses.items())),
    }
    if op.description:
        document["description"] = op.description
    if op.query:
        document["parameters"] = list(op.query)
    if op.body is not None:
        document["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema(op.body)}},
        }
    if op.security is not None:
        document["security"] = list(op.security)
    return document


def _path_item(path: str, methods: set[str]) -> dict[str, Any]:
    spec = OPERATIONS[path]
    item: dict[str, Any] = {}
    parameters = [
        {"name": name, "in": "path", "required": True, **PATH_PARAMETERS[name]}
        for name in _PARAMETER.findall(path)
    ]
    if parameters:
        item["parameters"] = parameters
    for method in sorted(methods):
        op = spec.get(method) or (spec.get("get") if method == "head" else None)
        if op is not None:
            item[method] = _operation(op, method)
    return item


def build_openapi(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the routes `app` serves (minus `LEFT_OUT`)."""
    methods: dict[str, set[str]] = {}
    for resource in app.router.resources():
        path = resource.canonical
        if left_out(path) is not None or path not in OPERATIONS:
            continue
        methods.setdefault(path, set()).update(route.method.lower() for route in resource)
    _, definitions = models_json_schema(
        [(model, "validation") for model in PUBLIC_MODELS], ref_template=REF
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tcai daemon",
            "version": __version__,
            "description": (
                "The HTTP contract of the tcai daemon's public routes (docs/http-api.md). "
                "Every error is the `Error` shape; every response carries `X-Request-Id`. "
                "A method a path does not list is a 405 (`MethodNotAllowed`, with `Allow`); "
                "an unknown path is a 404. The owner portal and the demo pages are left out."
            ),
        },
        "tags": [
            {"name": "widget", "description": "What the chat widget calls."},
            {"name": "operations", "description": "Health, metrics and this document."},
            {"name": "pages", "description": "HTML pages served by the daemon."},
        ],
        "paths": {path: _path_item(path, methods[path]) for path in sorted(methods)},
        "components": {
            "schemas": definitions["$defs"],
            "responses": RESPONSES,
            "headers": HEADERS,
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


@dataclass
class DocumentCache:
    """The document's bytes, built on the first request (the router is complete by then)
    and kept for the application's life."""

    body: bytes | None = None


OPENAPI = web.AppKey("openapi", DocumentCache)


async def openapi_document(request: web.Request) -> web.Response:
    """`GET /api/openapi.json`."""
    cached = request.app[OPENAPI]
    if cached.body is None:
        cached.body = json.dumps(build_openapi(request.app), ensure_ascii=False).encode()
    return web.Response(
        body=cached.body,
        content_type="application/json",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=300"},
    )
