"""The portal's routes, in one table (docs/http-api.md, "The owner portal").

Each workspace route names the action it needs in its handler (`portal_page(action)`);
tests/daemon/test_portal_isolation.py walks this table with every role and fails when a
route here is missing from its own list.
"""

from __future__ import annotations

from aiohttp import web

from tcai.daemon.portal import handlers as p

WORKSPACE = "/portal/w/{slug}"


def add_portal_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/", p.root)
    r.add_get("/favicon.ico", p.favicon)
    r.add_get("/portal", p.portal_root)
    r.add_get("/portal/static/{name}", p.static_file)
    r.add_get("/portal/login", p.login_form)
    r.add_post("/portal/login", p.login_submit)
    r.add_post("/portal/logout", p.logout_submit)
    r.add_get("/portal/invite/{token}", p.invite_form)
    r.add_post("/portal/invite/{token}", p.invite_submit)
    r.add_get("/portal/", p.workspaces)
    r.add_get(f"{WORKSPACE}/", p.dashboard)
    r.add_get(f"{WORKSPACE}/leads", p.leads)
    r.add_get(f"{WORKSPACE}/leads.csv", p.leads_csv)
    r.add_post(f"{WORKSPACE}/leads/status", p.lead_status)
    r.add_get(f"{WORKSPACE}/conversations", p.conversations)
    r.add_get(WORKSPACE + "/conversations/{conversation_id:[0-9]+}", p.conversation)
    r.add_get(f"{WORKSPACE}/bot", p.bot)
    r.add_post(f"{WORKSPACE}/bot/status", p.bot_status)
    r.add_post(f"{WORKSPACE}/bot/facts", p.bot_facts)
    r.add_get(f"{WORKSPACE}/users", p.users)
    r.add_get("/portal/{tail:.*}", p.not_found)
