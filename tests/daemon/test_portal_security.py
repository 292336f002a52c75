"""The portal against bad input over HTTP: forged, missing and cross-origin CSRF, ids of
another workspace in a URL or a form, a 10 MB form, HTML and script in every field that
is shown, sessions after logout, the cookies' flags, and one answer for every failed
sign-in."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestServer

from tcai.access.auth import FAILURE
from tcai.daemon.app import create_app
from tcai.db.models import AuditLog, BookingEvent, Bot, Lead, Message, Workspace
from tests.daemon.portal_support import FOREIGN, OWN, Portal, csrf_of, email_of, sign_in
from tests.helpers import make_settings

EVIL = "https://evil.example.net"
LEADS = f"/portal/w/{OWN}/leads"


def lead_status(portal: Portal, lead_id: int) -> str:
    return str(portal.query(Lead, Lead.id == lead_id)[0].status)


def bot_status(portal: Portal, bot_id: str) -> str:
    return str(portal.query(Bot, Bot.bot_id == bot_id)[0].status)


# ---- CSRF and Origin -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "token", "headers"),
    [
        ("forged token", "forged-" + "x" * 40, "own"),
        ("missing token", None, "own"),
        ("empty token", "", "own"),
        ("cross-origin", "valid", {"Origin": EVIL}),
        ("cross-origin referer", "valid", {"Referer": EVIL + "/page"}),
        ("null origin", "valid", {"Origin": "null"}),
        ("no origin nor referer", "valid", {}),
    ],
)
async def test_a_forged_or_cross_origin_form_is_refused(portal: Portal, case, token, headers):
    client, csrf = await portal.signed_in(email_of("owner"))
    sent = {"Origin": portal.origin} if headers == "own" else headers
    for url, form in (
        (f"{LEADS}/status", {"lead_id": str(portal.own.lead_id), "status": "lost"}),
        (
            f"/portal/w/{OWN}/bot/status",
            {"bot_id": portal.own.bot_id, "action": "pause", "reason": "csrf"},
        ),
        (f"/portal/w/{OWN}/bot/facts", {"bot_id": portal.own.bot_id, "phone": "+17725550199"}),
        ("/portal/logout", {}),
    ):
        if token is not None:
            form = {**form, "csrf": csrf if token == "valid" else token}
        response = await client.post(url, data=form, headers=sent, allow_redirects=False)
        assert response.status == 403, (case, url)
        assert "text/html" in response.headers["Content-Type"]
    assert lead_status(portal, portal.own.lead_id) == "new"
    assert bot_status(portal, portal.own.bot_id) == "active"
    assert (await client.get("/portal/")).status == 200, "still signed in: logout was refused"
    assert not portal.query(AuditLog, AuditLog.action == "lead.status")


async def test_a_same_origin_referer_stands_in_for_a_missing_origin(portal: Portal) -> None:
    client, csrf = await portal.signed_in(email_of("agent"))
    response = await client.post(
        f"{LEADS}/status",
        data={"lead_id": str(portal.own.lead_id), "status": "contacted", "csrf": csrf},
        headers={"Referer": portal.origin + LEADS},
        allow_redirects=False,
    )
    assert response.status == 303
    assert lead_status(portal, portal.own.lead_id) == "contacted"


async def test_the_login_form_needs_its_own_token_and_our_origin(portal: Portal) -> None:
    client = await portal.browser()
    page = await client.get("/portal/login")
    csrf = csrf_of(await page.text())
    good = {"email": email_of("owner"), "password": portal.password, "csrf": csrf}
    for data, headers in (
        ({**good, "csrf": "y" * 43}, {"Origin": portal.origin}),
        ({k: v for k, v in good.items() if k != "csrf"}, {"Origin": portal.origin}),
        (good, {"Origin": EVIL}),
        (good, {}),
    ):
        response = await client.post("/portal/login", data=data, headers=headers)
        assert response.status == 403
    other = await portal.browser()  # no login cookie: the field alone is not enough
    response = await other.post("/portal/login", data=good, headers={"Origin": portal.origin})
    assert response.status == 403
    response = await client.post(
        "/portal/login", data=good, headers={"Origin": portal.origin}, allow_redirects=False
    )
    assert response.status == 303 and response.headers["Location"] == "/portal/"


async def test_a_huge_form_is_refused(portal: Portal) -> None:
    client, csrf = await portal.signed_in(email_of("owner"))
    body = {"csrf": csrf, "lead_id": str(portal.own.lead_id), "status": "lost"}
    body["padding"] = "a" * (10 * 1024 * 1024)
    response = await client.post(
        f"{LEADS}/status", data=body, headers={"Origin": portal.origin}, allow_redirects=False
    )
    assert response.status == 413
    assert lead_status(portal, portal.own.lead_id) == "new"
    anonymous = await portal.browser()
    response = await anonymous.post(
        "/portal/login", data={"padding": "b" * (10 * 1024 * 1024)}, allow_redirects=False
    )
    assert response.status == 413


# ---- ids of another workspace ------------------------------------------------------------


async def test_ids_of_another_workspace_are_not_found(portal: Portal) -> None:
    client, csrf = await portal.signed_in(email_of("owner"))
    foreign = portal.foreign
    own = {"Origin": portal.origin}
    assert (
        await client.get(f"/portal/w/{OWN}/conversations/{foreign.conversation_id}")
    ).status == 404
    assert (await client.get(f"/portal/w/{OWN}/conversations/99999999999999")).status == 404
    for lead_id in (str(foreign.lead_id), "99999999999", "abc", "", "-1"):
        response = await client.post(
            f"{LEADS}/status",
            data={"csrf": csrf, "lead_id": lead_id, "status": "lost"},
            headers=own,
            allow_redirects=False,
        )
        assert response.status == 404, lead_id
    response = await client.post(
        f"/portal/w/{OWN}/bot/status",
        data={"csrf": csrf, "bot_id": foreign.bot_id, "action": "pause", "reason": "probe"},
        headers=own,
        allow_redirects=False,
    )
    assert response.status == 404
    response = await client.post(
        f"/portal/w/{OWN}/bot/facts",
        data={"csrf": csrf, "bot_id": foreign.bot_id, "phone": "+17725550188"},
        headers=own,
        allow_redirects=False,
    )
    assert response.status == 404
    assert lead_status(portal, foreign.lead_id) == "new"
    assert bot_status(portal, foreign.bot_id) == "active"
    text = await (await client.get(LEADS)).text()
    assert str(foreign.lead_id) not in re.findall(r'name="lead_id" value="(\d+)"', text)
    csv = await (await client.get(f"{LEADS}.csv")).text()
    assert csv.count("\r\n") == 2, "the header and our one lead, nothing of the other workspace"


# ---- what the pages do ---------------------------------------------------------------------


async def test_an_agent_works_a_lead_and_the_change_is_audited(portal: Portal) -> None:
    client, csrf = await portal.signed_in(email_of("agent"))
    response = await client.post(
        f"{LEADS}/status",
        data={
            "csrf": csrf,
            "lead_id": str(portal.own.lead_id),
            "status": "contacted",
            "back": "status=new&q=ana&evil=<x>",
        },
        headers={"Origin": portal.origin},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"].startswith(f"{LEADS}?status=new&q=ana&done=updated")
    entry = portal.query(AuditLog, AuditLog.action == "lead.status")[0]
    assert entry.actor == email_of("agent") and entry.after == {"status": "contacted"}
    page = await client.get(LEADS + "?status=contacted&since=2000-01-01&q=772")
    assert "The lead&#39;s status was saved" not in await page.text()
    assert f'id="lead-{portal.own.lead_id}"' in await page.text()
    none = await client.get(LEADS + "?status=lost")
    assert f'id="lead-{portal.own.lead_id}"' not in await none.text()
    bad = await client.post(
        f"{LEADS}/status",
        data={"csrf": csrf, "lead_id": str(portal.own.lead_id), "status": "won-ish"},
        headers={"Origin": portal.origin},
    )
    assert bad.status == 422


async def test_the_csv_export_is_formula_safe_and_audited(portal: Portal) -> None:
    engine = portal.database.engine()
    from sqlmodel import Session

    with Session(engine) as session:
        lead = session.get(Lead, portal.own.lead_id)
        assert lead is not None
        lead.name = '=HYPERLINK("http://evil.example.net","x")'
        session.add(lead)
        session.commit()
    engine.dispose()
    client, _ = await portal.signed_in(email_of("staff"))
    response = await client.get(f"{LEADS}.csv")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    text = await response.text()
    assert text.startswith("lead_id,created_at")
    assert "'=HYPERLINK" in text
    entry = portal.query(AuditLog, AuditLog.action == "lead.export")[0]
    assert entry.actor == email_of("staff") and entry.after["rows"] == 1


async def test_pause_needs_a_reason_and_is_audited_with_the_person(portal: Portal) -> None:
    client, csrf = await portal.signed_in(email_of("manager"))
    url = f"/portal/w/{OWN}/bot/status"
    form = {"csrf": csrf, "bot_id": portal.own.bot_id, "action": "pause"}
    missing = await client.post(
        url, data={**form, "reason": "  "}, headers={"Origin": portal.origin}
    )
    assert missing.status == 422 and "Say why" in await missing.text()
    assert bot_status(portal, portal.own.bot_id) == "active"
    done = await client.post(
        url,
        data={**form, "reason": "closed for the holiday"},
        headers={"Origin": portal.origin},
        allow_redirects=False,
    )
    assert done.status == 303 and done.headers["Location"].endswith("/bot?done=paused")
    bot = portal.query(Bot, Bot.bot_id == portal.own.bot_id)[0]
    assert (bot.status, bot.paused_reason, bot.paused_by) == (
        "paused",
        "closed for the holiday",
        email_of("manager"),
    )
    entry = portal.query(AuditLog, AuditLog.action == "bot.disable")[0]
    assert entry.actor == email_of("manager") and entry.reason == "closed for the holiday"
    resumed = await client.post(
        url,
        data={**form, "action": "resume"},
        headers={"Origin": portal.origin},
        allow_redirects=False,
    )
    assert resumed.status == 303 and bot_status(portal, portal.own.bot_id) == "active"


async def test_business_facts_go_through_the_bots_validators(portal: Portal) -> None:
    client, csrf = await portal.signed_in(email_of("owner"))
    url = f"/portal/w/{OWN}/bot/facts"
    base = {"csrf": csrf, "bot_id": portal.own.bot_id}
    cases = [
        ({"phone": "call us maybe"}, 'id="fade-factory_main-phone-error"'),
        ({"hours.mon": "9 to 5"}, 'id="fade-factory_main-hours.mon-error"'),
        ({"booking_url": "http://squareup.com/x"}, 'id="fade-factory_main-booking_url-error"'),
        ({"allowed_origins": "not a url"}, 'id="fade-factory_main-allowed_origins-error"'),
    ]
    for fields, marker in cases:
        response = await client.post(
            url, data={**base, **fields}, headers={"Origin": portal.origin}
        )
        text = await response.text()
        assert response.status == 422 and marker in text, fields
        assert 'aria-invalid="true"' in text
    assert not portal.query(AuditLog, AuditLog.action == "bot.update")
    saved = await client.post(
        url,
        data={
            **base,
            "phone": "772-555-0177",
            "address": "99 New Rd, Stuart, FL 34994",
            "hours.mon": "08:00-12:00, 13:00-17:00",
            "allowed_origins": "https://fadefactory.example.org, https://www.fadefactory.example.org",
        },
        headers={"Origin": portal.origin},
        allow_redirects=False,
    )
    assert saved.status == 303 and saved.headers["Location"].endswith("done=saved")
    bot = portal.query(Bot, Bot.bot_id == portal.own.bot_id)[0]
    business = bot.config["business"]
    assert business["phone"] == "+17725550177" and business["address"].startswith("99 New Rd")
    assert business["hours"]["mon"] == ["08:00-12:00", "13:00-17:00"]
    assert bot.allowed_origins == [
        "https://fadefactory.example.org",
        "https://www.fadefactory.example.org",
    ]
    entry = portal.query(AuditLog, AuditLog.action == "bot.update")[0]
    assert entry.actor == email_of("owner")
    same = await client.post(
        url,
        data={**base, "phone": "+17725550177"},
        headers={"Origin": portal.origin},
        allow_redirects=False,
    )
    assert same.headers["Location"].endswith("done=unchanged")


# ---- HTML and script shown inert -------------------------------------------------------------

PAYLOADS = {
    "name": "<script>alert('name')</script>",
    "service": '"><img src=x onerror=alert(1)>',
    "message": "<b onmouseover=alert(2)>hi</b></p><script>alert(3)</script>",
    "reason": "<svg/onload=alert(4)>",
    "address": "<iframe src=javascript:alert(5)>",
    "url": 'https://booksy.com/x?a="><script>alert(6)</script>',
}


async def test_html_in_every_shown_field_is_inert(portal: Portal) -> None:
    from sqlmodel import Session, select

    engine = portal.database.engine()
    with Session(engine) as session:
        lead = session.get(Lead, portal.own.lead_id)
        assert lead is not None
        lead.name, lead.service_requested = PAYLOADS["name"], PAYLOADS["service"]
        lead.email = "ana@shopmail.com"
        session.add(lead)
        message = session.exec(
            select(Message).where(Message.conversation_id == portal.own.conversation_id)
        ).first()
        assert message is not None
        message.text = PAYLOADS["message"]
        session.add(message)
        bot = session.exec(select(Bot).where(Bot.bot_id == portal.own.bot_id)).one()
        bot.status, bot.paused_reason = "paused", PAYLOADS["reason"]
        bot.config = {
            **bot.config,
            "business": {**bot.config["business"], "address": PAYLOADS["address"]},
        }
        session.add(bot)
        workspace = session.get(Workspace, portal.own.workspace_id)
        assert workspace is not None
        workspace.name = PAYLOADS["name"]
        session.add(workspace)
        session.add(
            BookingEvent(
                workspace_id=portal.own.workspace_id,
                bot_id=bot.id or 0,
                conversation_id=portal.own.conversation_id,
                handling="external",
                provider="<i>Booksy</i>",
                url=PAYLOADS["url"],
            )
        )
        session.commit()
    engine.dispose()
    client, _ = await portal.signed_in(email_of("owner"))
    pages = [
        "/portal/",
        f"/portal/w/{OWN}/",
        LEADS,
        f"/portal/w/{OWN}/conversations",
        f"/portal/w/{OWN}/conversations/{portal.own.conversation_id}",
        f"/portal/w/{OWN}/bot",
        f"/portal/w/{OWN}/users",
    ]
    for url in pages:
        response = await client.get(url)
        assert response.status == 200, url
        text = await response.text()
        for raw in (
            "<script>alert",
            "<img src=x",
            "<b onmouseover",
            "<svg/onload",
            "<iframe",
            "<i>Booksy",
        ):
            assert raw not in text, (url, raw)
    conversation = await (
        await client.get(f"/portal/w/{OWN}/conversations/{portal.own.conversation_id}")
    ).text()
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in conversation
    assert "&lt;i&gt;Booksy&lt;/i&gt;" in conversation
    bot_page = await (await client.get(f"/portal/w/{OWN}/bot")).text()
    assert "&lt;svg/onload=alert(4)&gt;" in bot_page
    assert 'value="&lt;iframe src=javascript:alert(5)&gt;"' in bot_page


# ---- sessions and cookies ---------------------------------------------------------------------


async def test_logout_ends_the_session_on_the_server(portal: Portal) -> None:
    client, csrf = await portal.signed_in(email_of("viewer"))
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))["tcai_session"].value
    response = await client.post(
        "/portal/logout",
        data={"csrf": csrf},
        headers={"Origin": portal.origin},
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == "/portal/login"
    assert 'tcai_session=""' in response.headers["Set-Cookie"]
    replay = await portal.browser()
    replay.session.cookie_jar.update_cookies({"tcai_session": cookie}, client.make_url("/"))
    again = await replay.get(f"/portal/w/{OWN}/", allow_redirects=False)
    assert again.status == 303 and again.headers["Location"].startswith("/portal/login")


async def test_a_new_session_id_at_every_login(portal: Portal) -> None:
    client = await portal.browser()
    planted = "planted-by-someone-else-0123456789"
    client.session.cookie_jar.update_cookies({"tcai_session": planted}, client.make_url("/"))
    first = await sign_in(client, portal.origin, email_of("viewer"), portal.password)
    one = first.cookies["tcai_session"].value
    assert first.status == 303 and one != planted
    again = await client.get("/portal/login", allow_redirects=False)
    assert again.status == 303 and again.headers["Location"] == "/portal/"
    other = await portal.browser()
    second = await sign_in(other, portal.origin, email_of("viewer"), portal.password)
    assert second.cookies["tcai_session"].value not in (one, planted)


async def test_cookie_flags(portal: Portal) -> None:
    client = await portal.browser()
    response = await sign_in(client, portal.origin, email_of("viewer"), portal.password)
    cookie = response.cookies["tcai_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    assert not cookie["secure"]
    assert response.headers["Location"] == "/portal/"


async def test_cookies_are_host_prefixed_and_secure_in_production(portal: Portal, tmp_path) -> None:
    settings = make_settings(log_dir=tmp_path / "prod", tcai_env="production")
    engine = portal.database.engine()
    server = TestServer(create_app(settings, engine=engine), host="127.0.0.1")
    await server.start_server()
    try:
        from aiohttp.test_utils import TestClient

        async with TestClient(server) as client:
            page = await client.get("/portal/login")
            assert "__Host-tcai_login=" in page.headers["Set-Cookie"]
            assert "Secure" in page.headers["Set-Cookie"]
            csrf = csrf_of(await page.text())
            origin = f"http://127.0.0.1:{server.port}"
            response = await client.post(
                "/portal/login",
                data={"csrf": csrf, "email": email_of("viewer"), "password": portal.password},
                headers={"Origin": origin, "Cookie": f"__Host-tcai_login={csrf}"},
                allow_redirects=False,
            )
            assert response.status == 303
            cookies = response.headers.getall("Set-Cookie")
            session = next(c for c in cookies if c.startswith("__Host-tcai_session="))
            assert all(flag in session for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"))
            assert "Domain" not in session
    finally:
        await server.close()
        engine.dispose()


async def test_every_failed_sign_in_gets_the_same_page(portal: Portal) -> None:
    client = await portal.browser()
    bodies = []
    for email, password in (
        (email_of("viewer"), "not the right password"),
        ("nobody-here@fade-factory.shop", portal.password),
        ("", ""),
        ("<script>@x", "x"),
    ):
        response = await sign_in(client, portal.origin, email, password)
        assert response.status == 401
        text = await response.text()
        assert FAILURE.replace("'", "&#39;") in text
        bodies.append(re.sub(r'value="[^"]*"', "", text))
    assert len(set(bodies)) == 1, "the pages differ only by the form's token"


async def test_a_login_next_never_leaves_the_portal(portal: Portal) -> None:
    for target, lands in (
        (f"/portal/w/{OWN}/leads?status=new", f"/portal/w/{OWN}/leads?status=new"),
        ("https://evil.example.net/", "/portal/"),
        ("//evil.example.net/portal/", "/portal/"),
        ("/portal/../demo/", "/portal/"),
    ):
        client = await portal.browser()
        page = await client.get("/portal/login", params={"next": target})
        csrf = csrf_of(await page.text())
        response = await client.post(
            "/portal/login",
            data={
                "csrf": csrf,
                "email": email_of("viewer"),
                "password": portal.password,
                "next": target,
            },
            headers={"Origin": portal.origin},
            allow_redirects=False,
        )
        assert response.headers["Location"] == lands, target


async def test_every_portal_page_has_the_strict_policy(portal: Portal) -> None:
    client, _ = await portal.signed_in(email_of("owner"))
    for url in (
        "/portal/",
        f"/portal/w/{OWN}/",
        LEADS,
        f"/portal/w/{OWN}/bot",
        f"/portal/w/{FOREIGN}/",
    ):
        response = await client.get(url)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src" not in csp and "default-src 'none'" in csp, url
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["Cache-Control"] == "no-store"
        text = await response.text()
        assert "<script" not in text and " style=" not in text, url


# ---- invitations -------------------------------------------------------------------------------


async def test_an_invitation_link_sets_a_password_once(portal: Portal) -> None:
    from tcai.access.invites import create_invite

    engine = portal.database.engine()
    token, _ = create_invite(engine, "new.hire@fade-factory.shop", OWN, "agent", actor="t")
    engine.dispose()
    client = await portal.browser()
    url = f"/portal/invite/{token}"
    page = await client.get(url)
    text = await page.text()
    assert page.status == 200 and "new.hire@fade-factory.shop" in text and "agent" in text
    assert page.headers["Cache-Control"] == "no-store"
    csrf = csrf_of(text)
    password = "a brand new pass " + csrf[:6]
    own = {"Origin": portal.origin}
    forged = await client.post(
        url, data={"csrf": "z" * 43, "password": password, "confirm": password}, headers=own
    )
    assert forged.status == 403
    cross = await client.post(
        url,
        data={"csrf": csrf, "password": password, "confirm": password},
        headers={"Origin": EVIL},
    )
    assert cross.status == 403
    differ = await client.post(
        url, data={"csrf": csrf, "password": password, "confirm": password + "x"}, headers=own
    )
    assert differ.status == 422 and "differ" in await differ.text()
    weak = await client.post(
        url, data={"csrf": csrf, "password": "short", "confirm": "short"}, headers=own
    )
    assert weak.status == 422 and "12 characters" in await weak.text()
    done = await client.post(
        url,
        data={"csrf": csrf, "password": password, "confirm": password},
        headers=own,
        allow_redirects=False,
    )
    assert done.status == 303 and done.headers["Location"] == "/portal/login?done=welcome"
    assert "Your password is set" in await (await client.get("/portal/login?done=welcome")).text()
    again = await client.post(
        url, data={"csrf": csrf, "password": password, "confirm": password}, headers=own
    )
    assert again.status == 404 and "not valid any more" in await again.text()
    assert (await client.get(url)).status == 404
    assert (await client.get("/portal/invite/not-a-real-token")).status == 404
    signed = await sign_in(
        await portal.browser(), portal.origin, "new.hire@fade-factory.shop", password
    )
    assert signed.status == 303
