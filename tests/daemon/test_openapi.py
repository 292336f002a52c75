"""The published contract (docs/http-api.md, "The contract"): the OpenAPI document is
valid, names every public route the router serves, and real responses of every route
match what it documents (status, required headers, body model)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from openapi_spec_validator import validate
from pydantic import BaseModel, ValidationError

from tcai.bots.service import set_bot_status
from tcai.daemon.app import create_app
from tcai.daemon.handlers import IDENTIFIER
from tcai.daemon.keys import DIRECTORY
from tcai.daemon.openapi import LEFT_OUT, build_openapi, left_out
from tcai.daemon.schemas import (
    IDENTIFIER_PATTERN,
    PUBLIC_MODELS,
    BookingClick,
    ChatMessage,
    StreamChunk,
    parse_body,
)
from tcai.errors import InvalidMessage
from tests.conftest import provision
from tests.helpers import ALLOWED, CHAT_PATH, CONFIG_PATH, make_settings, token_for

MODELS: dict[str, type[BaseModel]] = {model.__name__: model for model in PUBLIC_MODELS}
BOOKING_URL = "https://squareup.com/appointments/book/fade-factory"
CONFIG_T = "/api/widget/config/{client_id}/{bot_id}"
CHAT_T = "/api/chat/{client_id}/{bot_id}"
CLICK = "/api/booking/click"


@pytest.fixture
def limits() -> dict[str, str]:
    """Rate-limit settings for `client` (a test parametrises it to reach a 429)."""
    return {}


@pytest.fixture
async def client(seeded, aiohttp_client, tmp_path, limits):
    provision(seeded, allowed_origins=[ALLOWED], booking_url=BOOKING_URL)
    engine = seeded.engine()
    settings = make_settings(log_dir=tmp_path / "logs", **limits)
    test_client = await aiohttp_client(create_app(settings, engine=engine))
    test_client.db = seeded
    test_client.document = await (await test_client.get("/api/openapi.json")).json()
    yield test_client
    engine.dispose()


def missing_routes(app: web.Application, document: dict[str, Any]) -> list[str]:
    """Every (method, path) the router serves that the document lacks, minus LEFT_OUT."""
    missing = []
    for resource in app.router.resources():
        path = resource.canonical
        for route in resource:
            if left_out(path) is None and route.method.lower() not in document["paths"].get(
                path, {}
            ):
                missing.append(f"{route.method} {path}")
    return missing


# ---- the document ----------------------------------------------------------------------


async def test_the_document_is_valid_openapi_and_names_every_public_route(client) -> None:
    document = client.document
    validate(document)  # openapi-spec-validator: OpenAPI 3.1 and its JSON Schema dialect
    assert document["openapi"] == "3.1.0"
    assert missing_routes(client.app, document) == []
    # The left-out list names only what the router really has (so it cannot hide a typo).
    served = {resource.canonical for resource in client.app.router.resources()}
    for prefix in LEFT_OUT:
        assert any(path == prefix or path.startswith(prefix) for path in served), prefix
    assert "/portal/login" not in document["paths"] and "/demo/" not in document["paths"]


async def test_a_route_missing_from_the_document_is_caught(seeded, tmp_path) -> None:
    engine = seeded.engine()
    try:
        app = create_app(make_settings(log_dir=tmp_path), engine=engine)

        async def new(request: web.Request) -> web.Response:
            return web.Response()

        app.router.add_get("/api/something-new", new)
        assert missing_routes(app, build_openapi(app)) == [
            "HEAD /api/something-new",
            "GET /api/something-new",
        ]
    finally:
        engine.dispose()


async def test_the_document_is_built_once_and_served_as_json(client) -> None:
    first = await client.get("/api/openapi.json")
    second = await client.get("/api/openapi.json")
    assert first.status == second.status == 200
    assert first.content_type == "application/json"
    assert await first.read() == await second.read()
    assert json.loads(await first.read()) == build_openapi(client.app)


def test_path_ids_carry_the_pattern_the_handlers_enforce() -> None:
    assert f"^{IDENTIFIER.pattern}$" == IDENTIFIER_PATTERN


async def test_path_parameters_and_error_responses(client) -> None:
    paths = client.document["paths"]
    for name in ("client_id", "bot_id"):
        (parameter,) = [p for p in paths[CHAT_T]["parameters"] if p["name"] == name]
        assert parameter["schema"]["pattern"] == IDENTIFIER_PATTERN
    rate_limited = client.document["components"]["responses"]["RateLimited"]
    assert rate_limited["headers"]["Retry-After"] == {"$ref": "#/components/headers/Retry-After"}
    assert client.document["components"]["headers"]["Retry-After"]["required"] is True
    chat = paths[CHAT_T]["post"]
    assert set(chat["responses"]) >= {"200", "400", "401", "403", "404", "413", "429", "503"}
    assert set(chat["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert chat["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChatMessage"
    }
    assert chat["security"] == [{"widgetToken": []}]


# ---- request bodies through the models -------------------------------------------------


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (ChatMessage, {}, "message is required"),
        (ChatMessage, {"message": 42}, "message must be a string"),
        (ChatMessage, {"message": "x" * 2001}, "message must be at most 2,000"),
        (ChatMessage, {"message": "hi", "session_id": "short"}, "session_id must be 8-64"),
        (ChatMessage, {"message": "hi", "session_id": "abcdefgh\n"}, "session_id must be 8-64"),
        (BookingClick, {"session_id": "visitor-0001"}, "url is required"),
        (BookingClick, {"url": ["https://x.example"]}, "url must be a string"),
        (BookingClick, {"url": BOOKING_URL, "session_id": "visitor\x00001"}, "session_id"),
    ],
)
def test_a_wrong_body_names_its_field(model, body, field) -> None:
    with pytest.raises(InvalidMessage) as refused:
        parse_body(model, body)
    assert refused.value.message.startswith(field), refused.value.message


def test_unknown_keys_are_ignored() -> None:
    turn = parse_body(ChatMessage, {"message": "hi", "history": [{"role": "system"}]})
    assert (turn.message, turn.session_id) == ("hi", None)


async def test_a_click_with_a_nul_in_its_session_is_a_400_not_a_database_error(client) -> None:
    # PostgreSQL refuses NUL in text: before the model, this was a 500 there.
    token = await token_for(client)
    response = await client.post(
        CLICK,
        json={"url": BOOKING_URL, "session_id": "visitor\x00001"},
        headers={"Origin": ALLOWED, "Authorization": f"Bearer {token}"},
    )
    assert response.status == 400
    body = await response.json()
    assert body["error"]["code"] == "invalid_message"
    assert "session_id" in body["error"]["message"]


# ---- real responses against the document and the models --------------------------------


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, section, name = node["$ref"].split("/")
        node = document["components"][section][name]
    return node


def _models(schema: dict[str, Any]) -> list[type[BaseModel]]:
    refs = [schema] if "$ref" in schema else schema.get("oneOf", [])
    return [MODELS[ref["$ref"].rsplit("/", 1)[1]] for ref in refs]


def _validate(schema: dict[str, Any], data: Any) -> None:
    models = _models(schema)
    if not models:
        assert isinstance(data, dict) and schema == {"type": "object"}
        return
    errors = []
    for model in models:
        try:
            model.model_validate(data)
            return
        except ValidationError as exc:
            errors.append(str(exc))
    raise AssertionError("\n".join(errors))


async def check(client, response, template: str) -> bytes:
    """`response` is documented for its route and status, with its required headers, and
    its body matches the documented model. Returns the body."""
    document = client.document
    method = response.method.lower()
    operation = document["paths"][template][method]
    assert response.status != 500, await response.text()  # documented, but always a bug
    documented = operation["responses"].get(str(response.status))
    assert documented is not None, f"{method} {template}: {response.status} is not documented"
    documented = _resolve(document, documented)
    for name, header in documented.get("headers", {}).items():
        if _resolve(document, header).get("required"):
            assert name in response.headers, (template, response.status, name)
    body = await response.read()
    if not body:
        return body
    content = documented["content"]
    assert response.content_type in content, (template, response.status, response.content_type)
    if response.content_type == "application/json":
        _validate(content["application/json"]["schema"], json.loads(body))
    return body


def _events(body: bytes) -> list[tuple[str, Any]]:
    events = []
    for block in body.decode().split("\n\n"):
        if block.strip():
            kind, data = block.split("\n", 1)
            events.append((kind.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


async def test_every_route_answers_as_documented(client) -> None:
    own = {"Origin": ALLOWED}
    token = await token_for(client)
    auth = {**own, "Authorization": f"Bearer {token}"}

    for method in ("GET", "HEAD"):
        await check(client, await client.request(method, "/api/health"), "/api/health")
        await check(client, await client.request(method, "/metrics"), "/metrics")
        await check(client, await client.request(method, "/api/openapi.json"), "/api/openapi.json")
        await check(client, await client.request(method, CONFIG_PATH, headers=own), CONFIG_T)
        for name in ("embed.js", "frame.html", "widget.js", "widget.css", "page.css", "nope.js"):
            await check(client, await client.request(method, f"/widget/{name}"), "/widget/{name}")
        await check(client, await client.request(method, "/preview/x.y.z"), "/preview/{token}")

    # widget config: refused origin, unknown bot, a forged preview token
    await check(
        client, await client.get(CONFIG_PATH, headers={"Origin": "https://evil.example"}), CONFIG_T
    )
    await check(
        client, await client.get("/api/widget/config/fade-factory/nobody", headers=own), CONFIG_T
    )
    await check(client, await client.get(CONFIG_PATH + "?preview=x.y.z", headers=own), CONFIG_T)

    # preflights
    for path, template in ((CONFIG_PATH, CONFIG_T), (CHAT_PATH, CHAT_T), (CLICK, CLICK)):
        for origin in (ALLOWED, "https://evil.example"):
            await check(client, await client.options(path, headers={"Origin": origin}), template)

    # chat: a booking turn (an action), a stream (chunks then done), every refusal
    booked = await client.post(CHAT_PATH, json={"message": "I'd like to book a cut"}, headers=auth)
    reply = json.loads(await check(client, booked, CHAT_T))
    assert booked.status == 200 and reply["actions"][0]["type"] == "booking_redirect"
    streamed = await client.post(
        CHAT_PATH,
        json={"message": "what are your hours?", "session_id": reply["session_id"]},
        headers={**auth, "Accept": "text/event-stream"},
    )
    events = _events(await check(client, streamed, CHAT_T))
    assert streamed.content_type == "text/event-stream"
    assert [kind for kind, _ in events][-1] == "done"
    for kind, data in events:
        (MODELS["ChatReply"] if kind == "done" else StreamChunk).model_validate(data)
    for body, headers in (
        ({"message": ""}, auth),  # 400
        ({"message": "hi"}, own),  # 401: no token
        ({"message": "hi"}, {**auth, "Origin": "https://evil.example"}),  # 403
    ):
        await check(client, await client.post(CHAT_PATH, json=body, headers=headers), CHAT_T)
    await check(
        client,
        await client.post("/api/chat/fade-factory/nobody", json={"message": "hi"}, headers=auth),
        CHAT_T,
    )
    too_big = await client.post(CHAT_PATH, json={"message": "x" * 20_000}, headers=auth)
    assert too_big.status == 413
    await check(client, too_big, CHAT_T)

    # booking click: recorded (204), then a link tcai would not send (400)
    click = {"url": BOOKING_URL, "session_id": reply["session_id"]}
    recorded = await client.post(CLICK, json=click, headers=auth)
    assert recorded.status == 204
    await check(client, recorded, CLICK)
    refused = await client.post(CLICK, json={"url": "http://pay.example/checkout"}, headers=auth)
    assert refused.status == 400
    await check(client, refused, CLICK)
    await check(client, await client.post(CLICK, json=click, headers=own), CLICK)  # 401

    # a paused bot: the paused widget config, and the paused reply (503)
    engine = client.db.engine()
    try:
        set_bot_status(engine, "fade-factory_main", enabled=False, reason="contract test")
    finally:
        engine.dispose()
    client.app[DIRECTORY].invalidate()
    paused = await client.get(CONFIG_PATH, headers=own)
    config = json.loads(await check(client, paused, CONFIG_T))
    assert config["status"] == "paused" and config["paused_message"]

    # a method a path does not answer: 405 with Allow, in the error shape
    wrong = await client.delete(CHAT_PATH, headers=auth)
    assert wrong.status == 405 and "POST" in wrong.headers["Allow"]
    MODELS["Error"].model_validate(await wrong.json())


async def test_a_paused_turn_is_a_documented_503_reply(client) -> None:
    token = await token_for(client)
    engine = client.db.engine()
    try:
        set_bot_status(engine, "fade-factory_main", enabled=False, reason="contract test")
    finally:
        engine.dispose()
    client.app[DIRECTORY].invalidate()
    response = await client.post(
        CHAT_PATH,
        json={"message": "hello"},
        headers={"Origin": ALLOWED, "Authorization": f"Bearer {token}"},
    )
    assert response.status == 503
    body = json.loads(await check(client, response, CHAT_T))
    assert body["status"] == "paused" and body["source"] == "paused"


@pytest.mark.parametrize(
    "limits", [{"chat_rate_limit": "1/minute", "chat_address_rate_limit": "1/minute"}]
)
async def test_a_rate_limited_request_is_documented_with_retry_after(client) -> None:
    token = await token_for(client)
    auth = {"Origin": ALLOWED, "Authorization": f"Bearer {token}"}
    statuses = []
    for _ in range(3):
        response = await client.post(CHAT_PATH, json={"message": "hello"}, headers=auth)
        statuses.append(response.status)
        await check(client, response, CHAT_T)
    assert statuses[-1] == 429 and int(response.headers["Retry-After"]) >= 1
    click = await client.post(CLICK, json={"url": BOOKING_URL}, headers=auth)
    assert click.status == 429
    await check(client, click, CLICK)
