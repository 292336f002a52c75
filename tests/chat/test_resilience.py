"""The chat engine's promises under faults (docs/chat-pipeline.md): crisis before every
gate, every turn logged, quotas that never overshoot, text hygiene at the door, answers
from memory while the database is down, a config that stops loading, and a time budget
that counts from the request's arrival."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlmodel import Session, select

import tcai.chat.directory as directory_module
import tcai.chat.pipeline as pipeline_module
from tcai.chat.pipeline import ChatRequest, clean_text
from tcai.daemon.keys import DIRECTORY
from tcai.db.models import Bot, Conversation, Lead, Message, Outbox, Usage, Workspace
from tcai.errors import BotUnavailable, DatabaseUnavailable, InvalidMessage
from tests.conftest import provision
from tests.helpers import rows, set_bot

CRISIS = "I want to kill myself"


def update(database, model, **values) -> None:
    engine = database.engine()
    try:
        with Session(engine) as session:
            for row in session.exec(select(model)).all():
                for key, value in values.items():
                    setattr(row, key, value)
                session.add(row)
            session.commit()
    finally:
        engine.dispose()


def set_usage(database, messages: int, leads: int = 0) -> None:
    engine = database.engine()
    try:
        with Session(engine) as session:
            ws = session.exec(select(Workspace)).one()
            month = datetime.now(UTC).strftime("%Y-%m")
            session.add(Usage(workspace_id=ws.id, month=month, messages=messages, leads=leads))
            session.commit()
    finally:
        engine.dispose()


def sources(database) -> list[tuple[str, str]]:
    return [(m.role, m.source) for m in sorted(rows(database, Message), key=lambda m: m.id)]


# ---- order: crisis first, every turn logged ------------------------------------------


@pytest.mark.parametrize("state", ["bot_paused", "workspace_paused", "messages_over_quota"])
async def test_crisis_is_answered_whatever_the_bots_state(facts_chat, barber, state) -> None:
    if state == "bot_paused":
        update(facts_chat.database, Bot, status="paused")
    elif state == "workspace_paused":
        update(facts_chat.database, Workspace, status="paused")
    else:
        set_usage(facts_chat.database, messages=100)
    reply = await facts_chat.say(CRISIS)
    assert (reply.source, reply.http_status) == ("crisis", 200)
    assert "988" in reply.reply and "911" in reply.reply
    conversation = rows(facts_chat.database, Conversation)[0]
    assert conversation.flag_crisis and conversation.flag_needs_review
    # The gate still holds for the next, ordinary message.
    after = await facts_chat.say("what are your prices?", session=reply.session_id)
    assert after.source in ("paused", "limit")


async def test_crisis_beats_automations_and_after_hours(facts_chat, barber) -> None:
    set_bot(
        facts_chat.database,
        "after_hours_message=We're closed right now.",
        "after_hours_mode=replace",
        *(f"hours.{d}=closed" for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")),
        patch={
            "automations": [{"id": "k", "match": "contains", "pattern": "kill", "reply": "Ha!"}]
        },
    )
    reply = await facts_chat.say(CRISIS)
    assert reply.source == "crisis" and "988" in reply.reply


@pytest.mark.parametrize(
    ("state", "source", "messages_after"),
    [("paused", "paused", 0), ("message_quota", "limit", 100)],
)
async def test_refused_turns_are_logged_and_keep_the_contact(
    facts_chat, barber, state, source, messages_after
) -> None:
    if state == "paused":
        update(facts_chat.database, Bot, status="paused")
    else:
        set_usage(facts_chat.database, messages=100)
    reply = await facts_chat.say("I'm Ana, 772-555-0142, please call me")
    assert reply.source == source and reply.lead_captured
    assert sources(facts_chat.database) == [("user", "visitor"), ("assistant", source)]
    lead = rows(facts_chat.database, Lead)[0]
    assert (lead.name, lead.phone) == ("Ana", "+17725550142")
    usage = rows(facts_chat.database, Usage)
    # A refused turn is logged but does not count as a message.
    assert sum(u.messages for u in usage) == messages_after


async def test_the_message_quota_never_overshoots_under_concurrency(facts_chat, barber) -> None:
    set_usage(facts_chat.database, messages=90)  # the free plan allows 100
    engine = facts_chat.make()
    try:
        replies = await asyncio.gather(
            *(
                engine.handle(ChatRequest("fade-factory", "fade-factory_main", f"hello {i}"))
                for i in range(50)
            )
        )
    finally:
        engine.close()
    answered = [r for r in replies if r.source != "limit"]
    assert len(answered) == 10
    assert all(r.http_status == 429 for r in replies if r.source == "limit")
    assert rows(facts_chat.database, Usage)[0].messages == 100
    assert len(rows(facts_chat.database, Message)) == 100  # every turn is in the log


async def test_a_missing_usage_row_counts_from_zero(facts_chat, barber) -> None:
    await facts_chat.say("hello")
    engine = facts_chat.database.engine()
    with engine.begin() as conn:
        conn.execute(sa.delete(Usage))
    engine.dispose()
    reply = await facts_chat.say("hello again")
    assert reply.source != "limit"
    assert rows(facts_chat.database, Usage)[0].messages == 1


# ---- text at the door ------------------------------------------------------------------


def test_clean_text_replaces_lone_surrogates_and_drops_controls() -> None:
    assert clean_text("hi \ud83d there") == "hi \ufffd there"
    assert clean_text("a\x00b\x07c\td\ne") == "abc\td\ne"
    assert clean_text("😀 ok") == "😀 ok"


@pytest.mark.parametrize(
    "message",
    [
        "I'm Ana \ud83d, 772-555-0142",  # an emoji cut in half by a client
        "I'm Ana\x00 772-555-0142",
        "Привет! I'm Ana, 你好, call me at 772-555-0142",
        "😀" * 3 + " 772-555-0142 I'm Ana",
    ],
)
async def test_odd_text_still_stores_the_turn_and_the_contact(facts_chat, barber, message) -> None:
    reply = await facts_chat.say(message)
    assert reply.lead_captured
    assert rows(facts_chat.database, Lead)[0].phone == "+17725550142"
    stored = [m.text for m in rows(facts_chat.database, Message) if m.role == "user"]
    assert len(stored) == 1 and "\x00" not in stored[0]
    assert all(not 0xD800 <= ord(ch) <= 0xDFFF for ch in stored[0])


@pytest.mark.parametrize("message", ["😀😀😀", "x" * 2000, "ok"])
async def test_short_long_and_emoji_messages_get_an_answer(facts_chat, barber, message) -> None:
    reply = await facts_chat.say(message)
    assert reply.reply and reply.source in ("faq", "failsafe")


@pytest.mark.parametrize("message", ["   \n\t ", "\x00\x00", "x" * 2001, ""])
async def test_empty_or_oversized_messages_are_refused(facts_chat, barber, message) -> None:
    with pytest.raises(InvalidMessage):
        await facts_chat.say(message)
    assert rows(facts_chat.database, Message) == []


async def test_a_session_id_from_another_bot_starts_a_new_conversation(facts_chat, seeded) -> None:
    provision(seeded)
    provision(seeded, slug="clip-joint", name="Clip Joint")
    first = await facts_chat.say("I'm Ana, 772-555-0142", session="shared-session-1")
    other = await facts_chat.say(
        "what are your hours?", session=first.session_id, client="clip-joint", bot="clip-joint_main"
    )
    assert other.session_id == first.session_id
    conversations = rows(facts_chat.database, Conversation)
    assert len(conversations) == 2
    assert len({c.workspace_id for c in conversations}) == 2
    # The other business does not get the first one's lead.
    leads = rows(facts_chat.database, Lead)
    assert len(leads) == 1 and leads[0].workspace_id == conversations[0].workspace_id


# ---- a config that stops loading ---------------------------------------------------------


async def test_a_broken_config_serves_the_last_good_version(facts_chat, barber, caplog) -> None:
    engine = facts_chat.make()
    try:
        ok = await engine.handle(ChatRequest("fade-factory", "fade-factory_main", "hello"))
        assert ok.reply
        broken = {"business": {"name": 42}, "nonsense": True}
        update(facts_chat.database, Bot, config=broken, config_version=99)
        engine.directory.invalidate()
        with caplog.at_level(logging.ERROR, logger="tcai.bots"):
            reply = await engine.handle(
                ChatRequest("fade-factory", "fade-factory_main", "do you take walk-ins?")
            )
            await engine.handle(ChatRequest("fade-factory", "fade-factory_main", "hi again"))
        assert reply.source == "faq" and "walk" in reply.reply.lower()
        errors = [r for r in caplog.records if "does not load" in r.getMessage()]
        assert len(errors) == 1 and "version 99" in errors[0].getMessage()
    finally:
        engine.close()
    fresh = facts_chat.make()
    try:
        with pytest.raises(BotUnavailable):
            await fresh.handle(ChatRequest("fade-factory", "fade-factory_main", "hello"))
    finally:
        fresh.close()


# ---- the database down -------------------------------------------------------------------


def _database_down(monkeypatch) -> None:
    def down(*_a, **_k):
        raise DatabaseUnavailable(
            "cannot reach PostgreSQL at 10.9.8.7:5432/tcai_prod (connection refused); "
            "check DATABASE_URL"
        )

    for scope in ("autocommit_scope", "connection_scope"):
        monkeypatch.setattr(pipeline_module, scope, down)
    monkeypatch.setattr(directory_module, "session_scope", down)


async def test_database_down_answers_from_memory_and_spools_the_contact(
    facts_chat, barber, monkeypatch, cli
) -> None:
    engine = facts_chat.make()
    try:
        warm = await engine.handle(ChatRequest("fade-factory", "fade-factory_main", "hello"))
        with monkeypatch.context() as patched:
            _database_down(patched)
            reply = await engine.handle(
                ChatRequest(
                    "fade-factory",
                    "fade-factory_main",
                    "I'm Ana, 772-555-0142, do you take walk-ins?",
                    warm.session_id,
                )
            )
            # A bot this process never saw: no facts to answer from, contacts kept.
            unknown = await engine.handle(
                ChatRequest("other-shop", "other-shop_main", "call me, 772-555-0199")
            )
    finally:
        engine.close()
    assert reply.http_status == 200 and reply.lead_captured
    assert "walk" in reply.reply.lower() and "(772) 555-0100" in reply.reply
    for text in (reply.reply, unknown.reply, json.dumps(reply.as_dict())):
        for secret in ("PostgreSQL", "5432", "10.9.8.7", "tcai_prod", "DATABASE_URL"):
            assert secret not in text
    assert (unknown.http_status, unknown.status, unknown.lead_captured) == (
        503,
        "unavailable",
        True,
    )
    entries = [json.loads(line) for line in facts_chat.spool.read_text().splitlines()]
    assert {e["contacts"]["phone"] for e in entries} == {"+17725550142", "+17725550199"}
    assert rows(facts_chat.database, Lead) == []

    # The database is back: the operator imports the spool; twice changes nothing.
    first = cli("leads", "recover", "--spool", str(facts_chat.spool), "--json")
    report = json.loads(first.stdout)
    assert report["imported"] == 1 and len(report["failed"]) == 1  # other-shop does not exist
    leads = rows(facts_chat.database, Lead)
    assert [(lead.name, lead.phone, lead.source) for lead in leads] == [
        ("Ana", "+17725550142", "spool")
    ]
    # The turn is in the conversation the visitor started before the outage.
    conversation = rows(facts_chat.database, Conversation)
    assert len(conversation) == 1 and conversation[0].lead_id == leads[0].id
    again = json.loads(cli("leads", "recover", "--spool", str(facts_chat.spool), "--json").stdout)
    assert again["imported"] == 0 and len(rows(facts_chat.database, Lead)) == 1


async def test_database_down_crisis_still_gets_the_crisis_answer(
    facts_chat, barber, monkeypatch
) -> None:
    engine = facts_chat.make()
    try:
        with monkeypatch.context() as patched:
            _database_down(patched)
            reply = await engine.handle(ChatRequest("fade-factory", "fade-factory_main", CRISIS))
    finally:
        engine.close()
    assert reply.source == "crisis" and "988" in reply.reply


# ---- the time budget -----------------------------------------------------------------------


async def test_the_llm_budget_counts_from_the_requests_arrival(llm_chat, barber, stub_llm) -> None:
    stub_llm.mode = "stall"
    engine = llm_chat.make(llm_timeout_ms=1500)
    try:
        # The request waited 1.45 s before the engine saw it: too little is left for the
        # LLM, so the visitor gets the facts answer at once and the LLM is not asked.
        reply = await engine.handle(
            ChatRequest(
                "fade-factory",
                "fade-factory_main",
                "I'm Ana, 772-555-0142",
                arrived=time.monotonic() - 1.45,
            )
        )
    finally:
        engine.close()
    assert reply.source == "failsafe" and reply.llm_failure == "timeout"
    assert reply.lead_captured and stub_llm.requests == []
    assert rows(llm_chat.database, Lead)[0].phone == "+17725550142"


async def test_a_stream_that_stalls_after_its_first_chunk_ends_with_the_failsafe(
    llm_chat, barber, stub_llm
) -> None:
    stub_llm.mode = "stall_mid"
    chunks: list[str] = []

    async def on_chunk(text: str) -> None:
        chunks.append(text)

    engine = llm_chat.make(llm_timeout_ms=1200)
    try:
        reply = await engine.handle(
            ChatRequest("fade-factory", "fade-factory_main", "I'm Ana, 772-555-0142"),
            on_chunk=on_chunk,
        )
    finally:
        engine.close()
    assert len(chunks) == 1  # the one chunk the LLM sent; the reply then replaces it
    assert reply.source == "failsafe" and reply.llm_failure == "stalled"
    assert reply.lead_captured and rows(llm_chat.database, Lead)[0].phone == "+17725550142"
    assert sources(llm_chat.database) == [("user", "visitor"), ("assistant", "failsafe")]


# ---- over HTTP -----------------------------------------------------------------------------


async def test_a_stalled_stream_over_http_ends_with_done_and_keeps_the_lead(
    seeded, stub_llm, aiohttp_client, tmp_path
) -> None:
    from pydantic import SecretStr

    from tcai.config import load_settings, new_secret
    from tcai.daemon.app import create_app

    origin = "https://fadefactory.example.org"
    provision(seeded, allowed_origins=[origin])
    settings = load_settings().model_copy(
        update={
            "widget_secret": SecretStr(new_secret()),
            "log_dir": tmp_path / "logs",
            "openai_api_key": SecretStr("test-key"),
            "openai_base_url": stub_llm.base_url,
            "llm_timeout_ms": 1200,
        }
    )
    engine = seeded.engine()
    client = await aiohttp_client(create_app(settings, engine=engine))
    try:
        config = await client.get(
            "/api/widget/config/fade-factory/fade-factory_main", headers={"Origin": origin}
        )
        token = (await config.json())["token"]
        stub_llm.mode = "stall_mid"
        response = await client.post(
            "/api/chat/fade-factory/fade-factory_main",
            json={"message": "I'm Ana, 772-555-0142, do you take walk-ins?"},
            headers={
                "Origin": origin,
                "Authorization": f"Bearer {token}",
                "Accept": "text/event-stream",
            },
        )
        text = await response.text()
    finally:
        await client.close()
        engine.dispose()
    events = [block for block in text.split("\n\n") if block.strip()]
    kinds = [block.split("\n")[0].removeprefix("event: ") for block in events]
    assert kinds[0] == "chunk" and kinds[-1] == "done"
    done = json.loads(events[-1].split("\ndata: ", 1)[1])
    assert done["source"] == "failsafe" and done["lead_captured"] is True
    assert "walk" in done["reply"].lower()
    assert rows(seeded, Lead)[0].phone == "+17725550142"
    assert sources(seeded) == [("user", "visitor"), ("assistant", "failsafe")]


async def test_a_never_seen_bot_while_the_database_is_down_gets_a_public_503(
    seeded, aiohttp_client, tmp_path, monkeypatch
) -> None:
    from pydantic import SecretStr

    from tcai.config import load_settings, new_secret
    from tcai.daemon.app import create_app

    provision(seeded)
    settings = load_settings().model_copy(
        update={"widget_secret": SecretStr(new_secret()), "log_dir": tmp_path / "logs"}
    )
    engine = seeded.engine()
    client = await aiohttp_client(create_app(settings, engine=engine))

    def down(*_a, **_k):
        raise DatabaseUnavailable("cannot reach PostgreSQL at 10.9.8.7:5432/tcai_prod")

    try:
        monkeypatch.setattr(client.app[DIRECTORY], "get", down)
        response = await client.get(
            "/api/widget/config/fade-factory/fade-factory_main",
            headers={"Origin": "http://localhost:3000"},
        )
        body = await response.text()
    finally:
        await client.close()
        engine.dispose()
    assert response.status == 503
    document = json.loads(body)
    assert document["error"]["code"] == "database_unavailable" and document["request_id"]
    for word in ("PostgreSQL", "5432", "10.9.8.7", "tcai_prod"):
        assert word not in body


async def test_a_never_seen_bot_keeps_a_contact_over_http_while_the_database_is_down(
    seeded, aiohttp_client, tmp_path, monkeypatch
) -> None:
    from tcai.access.tokens import mint_widget_token
    from tcai.config import load_settings, new_secret
    from tcai.daemon.app import create_app

    origin = "https://fadefactory.example.org"
    provision(seeded, allowed_origins=[origin])
    settings = load_settings().model_copy(
        update={"widget_secret": SecretStr(new_secret()), "log_dir": tmp_path / "logs"}
    )
    token, _expires = mint_widget_token(settings, "fade-factory", "fade-factory_main", origin)
    engine = seeded.engine()
    client = await aiohttp_client(create_app(settings, engine=engine))

    def down(*_a, **_k):
        raise DatabaseUnavailable("cannot reach PostgreSQL at 10.9.8.7:5432/tcai_prod")

    try:
        monkeypatch.setattr(client.app[DIRECTORY], "get", down)
        monkeypatch.setattr(pipeline_module, "autocommit_scope", down)
        monkeypatch.setattr(pipeline_module, "connection_scope", down)
        headers = {"Origin": origin, "Authorization": f"Bearer {token}"}
        url = "/api/chat/fade-factory/fade-factory_main"
        reply = await client.post(url, json={"message": "call me, 772-555-0142"}, headers=headers)
        body = await reply.text()
        stranger = await client.post(
            url,
            json={"message": "call me, 772-555-0199"},
            headers={**headers, "Origin": "https://evil.example"},
        )
    finally:
        await client.close()
        engine.dispose()
    assert reply.status == 503
    document = json.loads(body)
    assert document["status"] == "unavailable" and document["lead_captured"] is True
    assert "10.9.8.7" not in body and "PostgreSQL" not in body
    assert stranger.status == 403  # another site's page cannot use this token
    spooled = (tmp_path / "logs" / "lead-spool.jsonl").read_text().splitlines()
    assert [json.loads(line)["contacts"]["phone"] for line in spooled] == ["+17725550142"]


# ---- the lead quota: never a reason to lose a contact (docs/chat-pipeline.md, "Quotas") ----

HOOK = "https://hooks.fade-factory.example/tcai"


def outbox_types(database) -> list[tuple[str, dict]]:
    return [(row.event_type, row.payload["data"]) for row in rows(database, Outbox)]


async def test_over_the_lead_quota_contacts_are_kept_and_the_owner_told(facts_chat, barber) -> None:
    set_bot(facts_chat.database, f"webhook_url={HOOK}")
    set_usage(facts_chat.database, messages=5, leads=10)  # the free plan's 10 leads, spent
    first = await facts_chat.say("I'm Ana, 772-555-0142, please call me")
    second = await facts_chat.say("My name is Bo, 772-555-0199, call me back")
    for reply in (first, second):
        assert reply.http_status == 200 and reply.source in ("faq", "failsafe")
        assert reply.lead_captured
    leads = sorted(rows(facts_chat.database, Lead), key=lambda lead: lead.id)
    assert [(lead.name, lead.phone) for lead in leads] == [
        ("Ana", "+17725550142"),
        ("Bo", "+17725550199"),
    ]
    assert rows(facts_chat.database, Usage)[0].leads == 12
    events = outbox_types(facts_chat.database)
    created = [data for kind, data in events if kind == "lead.created"]
    assert [data.get("over_quota") for data in created] == [True, True]
    exceeded = [data for kind, data in events if kind == "quota.leads_exceeded"]
    assert exceeded == [{"plan": "free", "leads_cap": 10, "month": exceeded[0]["month"]}]


async def test_a_lead_counts_once_per_conversation_and_number(facts_chat, barber) -> None:
    session = "s-made-up-numbers"
    for number in ("772-555-0101", "772-555-0102", "772-555-0103"):
        reply = await facts_chat.say(f"call me at {number}", session=session)
        assert reply.lead_captured
    assert rows(facts_chat.database, Usage)[0].leads == 1  # one conversation, one lead
    # The conversation's lead now carries the last number given; another visit with
    # that number is the same person, not a new lead.
    assert [lead.phone for lead in rows(facts_chat.database, Lead)] == ["+17725550103"]
    await facts_chat.say("it's 772-555-0103", session="s-another-visit")
    assert rows(facts_chat.database, Usage)[0].leads == 1
    assert len(rows(facts_chat.database, Lead)) == 1
