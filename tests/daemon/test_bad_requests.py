"""Hostile bodies and ids at the public door: each gets a 4xx in the one error shape,
and none leaves a traceback row in system_log (docs/http-api.md, "Bad requests")."""

from __future__ import annotations

import gzip
import json

import aiohttp
import pytest

from tcai.daemon.app import create_app
from tcai.db.models import SystemLog
from tests.conftest import provision
from tests.helpers import ALLOWED, CHAT_PATH, count, make_settings, token_for

CLICK = "/api/booking/click"


@pytest.fixture
async def client(seeded, aiohttp_client, tmp_path):
    provision(seeded, allowed_origins=[ALLOWED])
    engine = seeded.engine()
    app = create_app(make_settings(log_dir=tmp_path / "logs"), engine=engine)
    test_client = await aiohttp_client(app)
    test_client.db = seeded
    yield test_client
    engine.dispose()


def _deep(levels: int) -> str:
    return '{"url": ' + "[" * levels + "1" + "]" * levels + "}"


BODIES = {
    "unknown charset": (
        b'{"url": "https://x.example"}',
        {"Content-Type": "application/json; charset=x-bogus"},
    ),
    "latin-1 charset": (
        '{"message": "caf\u00e9"}'.encode("latin-1"),
        {"Content-Type": "application/json; charset=latin-1"},
    ),
    "not UTF-8": (b'{"message": "\xff\xfe"}', {"Content-Type": "application/json"}),
    "a 5,000-digit number": (
        ('{"url": ' + "9" * 5000 + "}").encode(),
        {"Content-Type": "application/json"},
    ),
    "15,000-deep nesting": (_deep(15_000).encode(), {"Content-Type": "application/json"}),
    "NaN": (b'{"message": NaN}', {"Content-Type": "application/json"}),
    "gzip that is not gzip": (
        b"\x1f\x8bnot really",
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    ),
    "a JSON list": (b"[1, 2, 3]", {"Content-Type": "application/json"}),
    "nested objects": (
        json.dumps({"message": {"a": {"b": {"c": {"d": 1}}}}}).encode(),
        {"Content-Type": "application/json"},
    ),
}


async def _problems(client) -> int:
    return count(client.db, SystemLog)


@pytest.mark.parametrize("name", sorted(BODIES))
async def test_hostile_bodies_are_4xx_for_chat_and_clicks(client, name) -> None:
    body, headers = BODIES[name]
    token = await token_for(client)
    auth = {"Origin": ALLOWED, "Authorization": f"Bearer {token}"}
    for path in (CHAT_PATH, CLICK):
        try:
            response = await client.post(path, data=body, headers={**auth, **headers})
        except aiohttp.ServerDisconnectedError:
            # aiohttp's parser gives up on a body that does not decompress and closes the
            # connection itself; the daemon must simply stay healthy (checked below).
            assert name == "gzip that is not gzip", path
            continue
        document = await response.json()
        assert 400 <= response.status < 500, (path, response.status, document)
        assert set(document) == {"error", "request_id"}
    assert (await client.get("/api/health")).status == 200
    assert await _problems(client) == 0


async def test_a_click_is_refused_on_its_token_before_its_body_is_read(client) -> None:
    body, headers = BODIES["15,000-deep nesting"]
    response = await client.post(CLICK, data=body, headers={**headers, "Origin": ALLOWED})
    assert response.status == 401
    forged = await client.post(
        CLICK, data=body, headers={**headers, "Origin": ALLOWED, "Authorization": "Bearer x.y.z"}
    )
    assert forged.status == 401
    assert await _problems(client) == 0


@pytest.mark.parametrize("bad", ["fade-factory_main%00", "fade-factory_main%0A", "%00", "a%00b"])
async def test_nul_and_newline_in_ids_are_404_on_every_route(client, bad) -> None:
    token = await token_for(client)
    auth = {"Origin": ALLOWED, "Authorization": f"Bearer {token}"}
    for method, path, kwargs in (
        ("GET", f"/api/widget/config/fade-factory/{bad}", {"headers": {"Origin": ALLOWED}}),
        ("POST", f"/api/chat/fade-factory/{bad}", {"headers": auth, "json": {"message": "hi"}}),
        ("OPTIONS", f"/api/chat/fade-factory/{bad}", {"headers": {"Origin": ALLOWED}}),
        ("GET", f"/api/widget/config/{bad}/fade-factory_main", {"headers": {"Origin": ALLOWED}}),
    ):
        response = await client.request(method, path, **kwargs)
        assert response.status in (403, 404), (method, path, response.status)
    frame = await client.get(f"/widget/frame.html?client=fade-factory&bot={bad}")
    assert frame.status == 200 and ALLOWED not in frame.headers["Content-Security-Policy"]
    assert await _problems(client) == 0


async def test_real_gzip_still_works(client) -> None:
    token = await token_for(client)
    response = await client.post(
        CHAT_PATH,
        data=gzip.compress(json.dumps({"message": "what are your hours?"}).encode()),
        headers={
            "Origin": ALLOWED,
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
    )
    assert response.status == 200, await response.text()
