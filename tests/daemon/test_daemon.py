"""The daemon over HTTP: routes, error shape, CORS, tokens, rate limits, streaming."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import jwt
import pytest
from pydantic import SecretStr
from sqlmodel import Session, select

from tcai.access.tokens import mint_preview_token, mint_widget_token
from tcai.config import new_secret
from tcai.daemon.app import create_app
from tcai.daemon.ratelimit import RateLimits
from tcai.db.engine import make_engine
from tcai.db.models import BookingEvent, Bot
from tests.conftest import provision
from tests.helpers import ALLOWED, CHAT_PATH, CONFIG_PATH, make_settings, token_for

PATH, CONFIG = CHAT_PATH, CONFIG_PATH


@pytest.fixture
def site(seeded):
    provision(seeded, allowed_origins=[ALLOWED])
    return seeded


@pytest.fixture
async def client(site, aiohttp_client, tmp_path):
    engine = site.engine()
    settings = make_settings(log_dir=tmp_path / "logs")
    app = create_app(settings, engine=engine)
    test_client = await aiohttp_client(app)
    test_client.settings = settings
    test_client.db = site
    yield test_client
    engine.dispose()


async def post_chat(client, message="do you take walk-ins?", token=None, origin=ALLOWED, **headers):
    token = token or await token_for(client, origin)
    return await client.post(
        PATH,
        json={"message": message},
        headers={"Origin": origin, "Authorization": f"Bearer {token}", **headers},
    )


def assert_error_shape(body, code):
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == code and body["error"]["message"]
    assert body["request_id"]


# ---- health, metrics, error shape -------------------------------------------------------


async def test_health(client) -> None:
    response = await client.get("/api/health")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok" and body["db"]["ok"] is True
    assert body["timestamp"].endswith("Z") and body["version"]
    assert response.headers["X-Request-Id"]


async def test_health_is_degraded_when_the_database_is_down(aiohttp_client, tmp_path) -> None:
    settings = make_settings(log_dir=tmp_path)
    app = create_app(settings, engine=make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none"))
    client = await aiohttp_client(app)
    response = await client.get("/api/health")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "degraded" and body["db"]["ok"] is False


async def test_health_is_never_rate_limited(site, aiohttp_client, tmp_path) -> None:
    engine = site.engine()
    app = create_app(
        make_settings(log_dir=tmp_path),
        engine=engine,
        rate_limits=RateLimits("1/minute", "1/hour", "1/minute"),
    )
    client = await aiohttp_client(app)
    statuses = {(await client.get("/api/health")).status for _ in range(40)}
    assert statuses == {200}
    engine.dispose()


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("GET", "/nope", {}, 404, "not_found"),
        ("DELETE", "/api/health", {}, 405, "method_not_allowed"),
        (
            "GET",
            "/api/widget/config/fade-factory/ghost_main",
            {"headers": {"Origin": ALLOWED}},
            404,
            "not_found",
        ),
        (
            "GET",
            "/api/widget/config/other-client/fade-factory_main",
            {"headers": {"Origin": ALLOWED}},
            404,
            "not_found",
        ),
        (
            "GET",
            CONFIG,
            {"headers": {"Origin": "https://evil.example.net"}},
            403,
            "origin_not_allowed",
        ),
        ("GET", CONFIG, {}, 403, "origin_not_allowed"),
        (
            "POST",
            PATH,
            {"headers": {"Origin": ALLOWED}, "json": {"message": "hi"}},
            401,
            "invalid_token",
        ),
        ("GET", "/widget/secrets.txt", {}, 404, "not_found"),
    ],
)
async def test_error_shape_everywhere(client, method, path, kwargs, status, code) -> None:
    response = await client.request(method, path, **kwargs)
    assert response.status == status
    body = await response.json()
    assert_error_shape(body, code)
    assert response.headers["X-Request-Id"] == body["request_id"]


async def test_bodies_over_16_kib_are_413(client) -> None:
    token = await token_for(client)
    response = await client.post(
        PATH,
        data='{"message": "' + "x" * 20_000 + '"}',
        headers={
            "Origin": ALLOWED,
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
        },
    )
    assert response.status == 413
    assert_error_shape(await response.json(), "payload_too_large")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("{not json", "application/json"),
        ('["a list"]', "application/json"),
        ('{"message": 42}', "application/json"),
        ('{"message": "hi"}', "text/plain"),
        ('{"message": ""}', "application/json"),
        ('{"message": "hi", "session_id": "bad id!"}', "application/json"),
    ],
)
async def test_malformed_chat_bodies_are_400(client, body, content_type) -> None:
    token = await token_for(client)
    response = await client.post(
        PATH,
        data=body,
        headers={
            "Origin": ALLOWED,
            "Content-Type": content_type,
            "Authorization": f"Bearer {token}",
        },
    )
    assert response.status == 400
    assert_error_shape(await response.json(), "invalid_message")


async def test_metrics_count_routes_not_paths(client) -> None:
    await post_chat(client)
    text = await (await client.get("/metrics")).text()
    assert (
        'tcai_http_requests_total{method="POST",route="/api/chat/{client_id}/{bot_id}",status="200"} 1.0'
        in text
    )
    assert 'tcai_chat_answers_total{source="faq"} 1.0' in text
    assert "fade-factory" not in text


# ---- CORS and tokens ----------------------------------------------------------------------


async def test_cors_only_for_allowed_origins(client) -> None:
    ok = await client.options(
        PATH, headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"}
    )
    assert ok.status == 204
    assert ok.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Authorization" in ok.headers["Access-Control-Allow-Headers"]
    assert "Origin" in ok.headers["Vary"]
    bad = await client.options(PATH, headers={"Origin": "https://evil.example.net"})
    assert bad.status == 403 and "Access-Control-Allow-Origin" not in bad.headers
    config = await client.get(CONFIG, headers={"Origin": ALLOWED})
    assert config.headers["Access-Control-Allow-Origin"] == ALLOWED


async def test_localhost_is_allowed_only_outside_production(site, aiohttp_client, tmp_path) -> None:
    engine = site.engine()
    dev = await aiohttp_client(create_app(make_settings(log_dir=tmp_path), engine=engine))
    assert (await dev.get(CONFIG, headers={"Origin": "http://localhost:8080"})).status == 200
    prod = await aiohttp_client(
        create_app(make_settings(log_dir=tmp_path, tcai_env="production"), engine=engine)
    )
    assert (await prod.get(CONFIG, headers={"Origin": "http://localhost:8080"})).status == 403
    assert (await prod.get(CONFIG, headers={"Origin": ALLOWED})).status == 200
    engine.dispose()


async def test_in_production_a_host_header_never_makes_an_origin_ours(
    site, aiohttp_client, tmp_path
) -> None:
    """A script sending `Host: evil.example` with `Origin: http://evil.example` gets no
    widget token in production; only PUBLIC_URL is the daemon's own origin there."""
    engine = site.engine()
    forged = {"Host": "evil.example", "Origin": "http://evil.example"}
    prod = await aiohttp_client(
        create_app(make_settings(log_dir=tmp_path, tcai_env="production"), engine=engine)
    )
    assert (await prod.get(CONFIG, headers=forged)).status == 403
    same_site = {"Host": "evil.example", "Sec-Fetch-Site": "same-origin"}
    assert (await prod.get(CONFIG, headers=same_site)).status == 403
    public = make_settings(
        log_dir=tmp_path, tcai_env="production", public_url="https://chat.agency.example"
    )
    named = await aiohttp_client(create_app(public, engine=engine))
    assert (await named.get(CONFIG, headers=forged)).status == 403
    own = {"Origin": "https://chat.agency.example"}
    assert (await named.get(CONFIG, headers=own)).status == 200  # preview and demo pages
    dev = await aiohttp_client(create_app(make_settings(log_dir=tmp_path), engine=engine))
    assert (await dev.get(CONFIG, headers=forged)).status == 200  # development: Host is ours
    engine.dispose()


async def test_global_allowed_origins_apply_to_every_bot(site, aiohttp_client, tmp_path) -> None:
    engine = site.engine()
    settings = make_settings(
        log_dir=tmp_path,
        tcai_env="production",
        widget_allowed_origins=("https://agency.example.com",),
    )
    client = await aiohttp_client(create_app(settings, engine=engine))
    assert (
        await client.get(CONFIG, headers={"Origin": "https://agency.example.com"})
    ).status == 200
    engine.dispose()


async def test_token_binding(client) -> None:
    settings = client.settings
    other_bot, _ = mint_widget_token(settings, "fade-factory", "someone-else_main", ALLOWED)
    response = await post_chat(client, token=other_bot)
    assert response.status == 401
    other_origin = await token_for(client, "http://localhost:3000")
    response = await post_chat(client, token=other_origin)
    assert response.status == 403
    assert_error_shape(await response.json(), "origin_not_allowed")
    forged = jwt.encode(
        {
            "typ": "widget",
            "cid": "fade-factory",
            "aud_bot": "fade-factory_main",
            "origin": ALLOWED,
            "iss": "tcai",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        },
        "x" * 40,
        algorithm="HS256",
    )
    assert (await post_chat(client, token=forged)).status == 401
    expired = jwt.encode(
        {
            "typ": "widget",
            "cid": "fade-factory",
            "aud_bot": "fade-factory_main",
            "origin": ALLOWED,
            "iss": "tcai",
            "iat": int(time.time()) - 7200,
            "exp": int(time.time()) - 3600,
        },
        settings.widget_secret.get_secret_value(),
        algorithm="HS256",
    )
    response = await post_chat(client, token=expired)
    assert response.status == 401
    assert_error_shape(await response.json(), "token_expired")
    preview, _ = mint_preview_token(
        settings, "fade-factory", "fade-factory_main", timedelta(hours=1)
    )
    assert (await post_chat(client, token=preview)).status == 401


async def test_tokens_signed_with_the_previous_secret_keep_working(
    site, aiohttp_client, tmp_path
) -> None:
    old = make_settings(log_dir=tmp_path)
    token, _ = mint_widget_token(old, "fade-factory", "fade-factory_main", ALLOWED)
    rotated = old.model_copy(
        update={
            "widget_secret": SecretStr(new_secret()),
            "widget_secret_previous": old.widget_secret,
        }
    )
    engine = site.engine()
    client = await aiohttp_client(create_app(rotated, engine=engine))
    assert (await post_chat(client, token=token)).status == 200
    gone = old.model_copy(
        update={"widget_secret": SecretStr(new_secret()), "widget_secret_previous": None}
    )
    client2 = await aiohttp_client(create_app(gone, engine=engine))
    assert (await post_chat(client2, token=token)).status == 401
    engine.dispose()


# ---- chat ------------------------------------------------------------------------------------


async def test_chat_json(client) -> None:
    response = await post_chat(client)
    assert response.status == 200
    body = await response.json()
    assert body["source"] == "faq" and body["session_id"]
    assert set(body) == {
        "reply",
        "session_id",
        "source",
        "actions",
        "lead_captured",
        "quick_replies",
    }
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED


async def test_chat_streams_chunks_then_done(client) -> None:
    response = await post_chat(client, "I'd like to book", Accept="text/event-stream")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    text = await response.text()
    events = [block for block in text.split("\n\n") if block.strip()]
    kinds = [block.split("\n")[0].removeprefix("event: ") for block in events]
    assert kinds[-1] == "done" and set(kinds[:-1]) == {"chunk"}
    chunks = "".join(json.loads(b.split("\ndata: ", 1)[1])["text"] for b in events[:-1])
    done = json.loads(events[-1].split("\ndata: ", 1)[1])
    assert chunks == done["reply"]
    assert done["actions"][0]["type"] == "booking_requested"


async def test_paused_bot_answers_503_with_status(client) -> None:
    token = await token_for(client)
    engine = client.db.engine()
    with Session(engine) as session:
        bot = session.exec(select(Bot)).one()
        bot.status = "paused"
        session.add(bot)
        session.commit()
    engine.dispose()
    client.app[__import__("tcai.daemon.keys", fromlist=["DIRECTORY"]).DIRECTORY].invalidate()
    response = await post_chat(client, token=token)
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "paused" and body["source"] == "paused"
    streamed = await post_chat(client, token=token, Accept="text/event-stream")
    assert streamed.status == 503 and (await streamed.json())["status"] == "paused"


async def test_rate_limits_per_visitor_and_per_bot(site, aiohttp_client, tmp_path) -> None:
    engine = site.engine()
    app = create_app(
        make_settings(log_dir=tmp_path), engine=engine, rate_limits=RateLimits("3/minute", "5/hour")
    )
    client = await aiohttp_client(app)
    token = await token_for(client)
    statuses = [(await post_chat(client, token=token)).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = await post_chat(client, token=token)
    assert int(refused.headers["Retry-After"]) >= 1
    body = await refused.json()
    assert_error_shape(body, "rate_limited")
    assert "wait a moment" in body["error"]["message"]
    engine.dispose()


async def test_booking_click_is_recorded(client) -> None:
    token = await token_for(client)
    chat = await (await post_chat(client, "I'm Ana 772-555-0142", token=token)).json()
    headers = {"Origin": ALLOWED, "Authorization": f"Bearer {token}"}
    response = await client.post(
        "/api/booking/click",
        headers=headers,
        json={"session_id": chat["session_id"], "url": "https://booksy.com/en-us/1_ff"},
    )
    assert response.status == 204
    bad = await client.post(
        "/api/booking/click", headers=headers, json={"url": "javascript:alert(1)"}
    )
    assert bad.status == 400
    engine = client.db.engine()
    with Session(engine) as session:
        event = session.exec(select(BookingEvent)).one()
    engine.dispose()
    assert (event.handling, event.provider, event.lead_id is not None) == (
        "external",
        "Booksy",
        True,
    )


# ---- widget assets, preview and demo pages ------------------------------------------------


async def test_widget_assets_and_frame_policy(client) -> None:
    for name, kind in (
        ("embed.js", "javascript"),
        ("widget.js", "javascript"),
        ("widget.css", "css"),
    ):
        response = await client.get(f"/widget/{name}")
        assert response.status == 200 and kind in response.headers["Content-Type"]
    frame = await client.get("/widget/frame.html?client=fade-factory&bot=fade-factory_main")
    csp = frame.headers["Content-Security-Policy"]
    assert f"frame-ancestors 'self' {ALLOWED}" in csp
    assert "script-src 'self'" in csp and "unsafe" not in csp
    other = await client.get("/api/health")
    assert other.headers["Content-Security-Policy"] == "frame-ancestors 'none'"


async def test_preview_page(client) -> None:
    token, _ = mint_preview_token(
        client.settings, "fade-factory", "fade-factory_main", timedelta(hours=2)
    )
    page = await client.get(f"/preview/{token}")
    assert page.status == 200
    text = await page.text()
    assert 'data-bot="fade-factory_main"' in text and "<script>" not in text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    config = await client.get(
        f"{CONFIG}?preview={token}", headers={"Sec-Fetch-Site": "same-origin"}
    )
    assert config.status == 200
    wrong = await client.get(
        f"{CONFIG}?preview={token}", headers={"Origin": "https://evil.example.net"}
    )
    assert wrong.status == 403
    bad = await client.get("/preview/not-a-token")
    assert "expired or is not valid" in await bad.text()


async def test_demo_pages_only_in_demo_mode(client, site, aiohttp_client, tmp_path) -> None:
    assert (await client.get("/demo/")).status == 404
    engine = site.engine()
    demo = await aiohttp_client(
        create_app(make_settings(log_dir=tmp_path), engine=engine, demo=True)
    )
    assert (await demo.get("/demo/")).status == 200
    assert (await demo.get("/demo/fade-factory")).status == 404, "only workspaces with status demo"
    engine.dispose()


async def test_access_log_has_no_personal_data(client, tmp_path) -> None:
    await post_chat(client, "I'm Ana, ana.lopez@shopmail.com, 772-555-0142")
    log_file = client.settings.log_dir / "access.jsonl"
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    chat = [entry for entry in lines if entry.get("route") == "/api/chat/{client_id}/{bot_id}"]
    assert chat and chat[-1]["status"] == 200 and chat[-1]["request_id"]
    text = log_file.read_text()
    for secret in ("ana.lopez", "772-555-0142", "5550142", "Bearer"):
        assert secret not in text
    assert chat[-1]["ip"] == "127.0.0.0"
