"""The daemon's routes, in one table (docs/http-api.md says what each one does).

Exactly the public contract (published at `/api/openapi.json`, built from this router by
`tcai/daemon/openapi.py`) plus the demo pages, which answer 404 unless the daemon was
started by `tcai demo`, and the owner portal's pages (`tcai/daemon/portal/routes.py`).
"""

from __future__ import annotations

from aiohttp import web

from tcai.daemon import handlers as h
from tcai.daemon.openapi import OPENAPI, DocumentCache, openapi_document
from tcai.daemon.portal.routes import add_portal_routes


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/health", h.health)
    r.add_get("/metrics", h.metrics)
    r.add_get("/api/openapi.json", openapi_document)
    app[OPENAPI] = DocumentCache()
    r.add_get("/api/widget/config/{client_id}/{bot_id}", h.widget_config)
    r.add_route("OPTIONS", "/api/widget/config/{client_id}/{bot_id}", h.preflight)
    r.add_post("/api/chat/{client_id}/{bot_id}", h.chat)
    r.add_route("OPTIONS", "/api/chat/{client_id}/{bot_id}", h.preflight)
    r.add_post("/api/booking/click", h.booking_click)
    r.add_route("OPTIONS", "/api/booking/click", h.preflight)
    r.add_get("/widget/{name}", h.widget_asset)
    r.add_get("/preview/{token}", h.preview_page)
    r.add_get("/demo/", h.demo_index)
    r.add_get("/demo/themes.css", h.demo_themes)
    r.add_get("/demo/{client_id}", h.demo_page)
    add_portal_routes(app)
