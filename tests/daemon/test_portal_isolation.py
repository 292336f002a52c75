"""Every portal route, walked over HTTP by a person of each role, against their own
workspace and a foreign one (docs/http-api.md, "The owner portal").

Own workspace → allowed or 403 exactly as the role table says (`permissions.can`);
a foreign workspace → 404, never 403, so a probe cannot tell that it exists; a
super_admin may do everything everywhere. `ROUTES` must list every route the daemon
registers under /portal/ (plus / and the favicon): a new route that is not listed here
fails `test_every_portal_route_is_in_the_matrix`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tcai.access.permissions import can
from tcai.daemon.app import create_app
from tests.daemon.portal_support import (
    FOREIGN,
    OWN,
    ROLES,
    Portal,
    Tenant,
    email_of,
)
from tests.helpers import make_settings


@dataclass(frozen=True)
class Rule:
    kind: str  # "public", "session" or "workspace"
    action: str | None = None


ROUTES: dict[tuple[str, str], Rule] = {
    ("GET", "/"): Rule("public"),
    ("GET", "/favicon.ico"): Rule("public"),
    ("GET", "/portal"): Rule("public"),
    ("GET", "/portal/static/{name}"): Rule("public"),
    ("GET", "/portal/login"): Rule("public"),
    ("POST", "/portal/login"): Rule("public"),
    ("GET", "/portal/invite/{token}"): Rule("public"),
    ("POST", "/portal/invite/{token}"): Rule("public"),
    ("GET", "/portal/{tail}"): Rule("public"),
    ("GET", "/portal/"): Rule("session"),
    ("POST", "/portal/logout"): Rule("session"),
    ("GET", "/portal/w/{slug}/"): Rule("workspace", "view"),
    ("GET", "/portal/w/{slug}/leads"): Rule("workspace", "view"),
    ("GET", "/portal/w/{slug}/leads.csv"): Rule("workspace", "export_leads"),
    ("POST", "/portal/w/{slug}/leads/status"): Rule("workspace", "work_leads"),
    ("GET", "/portal/w/{slug}/conversations"): Rule("workspace", "view"),
    ("GET", "/portal/w/{slug}/conversations/{conversation_id}"): Rule("workspace", "view"),
    ("GET", "/portal/w/{slug}/bot"): Rule("workspace", "view"),
    ("POST", "/portal/w/{slug}/bot/status"): Rule("workspace", "pause_bot"),
    ("POST", "/portal/w/{slug}/bot/facts"): Rule("workspace", "edit_bot"),
    ("GET", "/portal/w/{slug}/users"): Rule("workspace", "manage_users"),
}
WORKSPACE_ROUTES = [key for key, rule in ROUTES.items() if rule.kind == "workspace"]


def portal_routes(app: Any) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method != "HEAD" and (path.startswith("/portal") or path in ("/", "/favicon.ico")):
            found.add((route.method, path))
    return found


def test_every_portal_route_is_in_the_matrix(tmp_path) -> None:
    app = create_app(make_settings(log_dir=tmp_path), engine=None)
    registered = portal_routes(app)
    assert registered - set(ROUTES) == set(), "add these routes to ROUTES (and the matrix)"
    assert set(ROUTES) - registered == set(), "ROUTES lists routes the daemon no longer has"


def request_for(method: str, path: str, target: Tenant, role: str) -> tuple[str, dict[str, str]]:
    url = path.replace("{slug}", target.slug).replace(
        "{conversation_id}", str(target.conversation_id)
    )
    form = {}
    if path.endswith("/leads/status"):
        form = {"lead_id": str(target.lead_id), "status": "contacted"}
    elif path.endswith("/bot/status"):
        form = {"bot_id": target.bot_id, "action": "pause", "reason": f"matrix {role}"}
    elif path.endswith("/bot/facts"):
        form = {"bot_id": target.bot_id, "address": f"1 Main St, Stuart, FL ({role})"}
    return url, form


def expected(role: str, action: str, target: Tenant, portal: Portal, method: str) -> int:
    if target is portal.foreign and role != "super_admin":
        return 404
    if not can(role, action):
        return 403
    return 303 if method == "POST" else 200


async def test_the_isolation_matrix(portal: Portal, capsys) -> None:
    checked, wrong = 0, []
    for role in ROLES:
        client, csrf = await portal.signed_in(email_of(role))
        for method, path in WORKSPACE_ROUTES:
            action = ROUTES[(method, path)].action
            assert action is not None
            for target in (portal.own, portal.foreign):
                url, form = request_for(method, path, target, role)
                if method == "POST":
                    response = await client.post(
                        url,
                        data={**form, "csrf": csrf},
                        headers={"Origin": portal.origin},
                        allow_redirects=False,
                    )
                else:
                    response = await client.get(url, allow_redirects=False)
                want = expected(role, action, target, portal, method)
                checked += 1
                if response.status != want:
                    where = "own" if target is portal.own else "foreign"
                    wrong.append(f"{role} {method} {url} ({where}): {response.status}, want {want}")
    assert wrong == [], "\n".join(wrong)
    routes = len(WORKSPACE_ROUTES)
    assert checked == routes * len(ROLES) * 2
    with capsys.disabled():
        print(
            f"\nisolation matrix: {routes} workspace routes × {len(ROLES)} roles × own/foreign "
            f"= {checked} requests, all as expected"
        )


async def test_the_workspace_list_shows_only_ones_own(portal: Portal) -> None:
    for role, sees in (
        ("viewer", {OWN}),
        ("owner", {OWN}),
        ("super_admin", {OWN, FOREIGN}),
    ):
        client, _ = await portal.signed_in(email_of(role))
        text = await (await client.get("/portal/")).text()
        shown = {slug for slug in (OWN, FOREIGN) if f"/portal/w/{slug}/" in text}
        assert shown == sees, role
    client, _ = await portal.signed_in(email_of("owner", FOREIGN))
    text = await (await client.get("/portal/")).text()
    assert f"/portal/w/{FOREIGN}/" in text and f"/portal/w/{OWN}/" not in text


async def test_signed_out_people_are_sent_to_the_login_page(portal: Portal) -> None:
    client = await portal.browser()
    for method, path in [*WORKSPACE_ROUTES, ("GET", "/portal/")]:
        url, form = request_for(method, path, portal.own, "nobody")
        if method == "GET":
            response = await client.get(url, allow_redirects=False)
            assert response.status == 303, url
            assert response.headers["Location"].startswith("/portal/login?next=")
        else:
            response = await client.post(
                url, data=form, headers={"Origin": portal.origin}, allow_redirects=False
            )
            assert response.status == 403, url
    # Signing out without a session changes nothing and lands on the sign-in page.
    response = await client.post(
        "/portal/logout", headers={"Origin": portal.origin}, allow_redirects=False
    )
    assert response.status == 303 and response.headers["Location"] == "/portal/login"


async def test_public_routes(portal: Portal) -> None:
    client = await portal.browser()
    root = await client.get("/", allow_redirects=False)
    assert root.status == 303 and root.headers["Location"] == "/portal/login"
    bare = await client.get("/portal", allow_redirects=False)
    assert bare.status == 303 and bare.headers["Location"] == "/portal/"
    icon = await client.get("/favicon.ico")
    assert icon.status == 200 and icon.headers["Content-Type"] == "image/x-icon"
    assert (await icon.read())[:4] == b"\x00\x00\x01\x00"
    assert "max-age" in icon.headers["Cache-Control"]
    css = await client.get("/portal/static/portal.css?v=1")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    assert "max-age" in css.headers["Cache-Control"]
    assert (await client.get("/portal/static/../app.py")).status == 404
    assert (await client.get("/portal/static/secrets.txt")).status == 404
    missing = await client.get("/portal/no/such/page")
    assert missing.status == 404 and "text/html" in missing.headers["Content-Type"]
    login = await client.get("/portal/login")
    assert login.headers["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    page = await login.text()
    assert "<script" not in page and "style=" not in page
    assert 'for="email"' in page and 'for="password"' in page
