"""Canary conversations (docs/canaries.md): the questions a bot's facts imply, the real
pipeline answering them without a trace in the business's records, a planted wrong fact
caught once per failure streak and cleared when fixed, paused bots skipped, the daemon's
loop after a config change, /metrics, and the table going with its workspace."""

from __future__ import annotations

import asyncio
import json
import socket
from email import message_from_bytes
from email.message import Message as EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiosmtpd.controller import Controller
from sqlmodel import Session, select

from tcai.bots.config import BotConfig
from tcai.chat.pipeline import ChatEngine, ChatRequest
from tcai.config import load_settings
from tcai.daemon.app import create_app
from tcai.db.models import (
    AppointmentRequest,
    AuditLog,
    BookingEvent,
    CanaryRun,
    Conversation,
    Lead,
    Message,
    Outbox,
    Usage,
    Workspace,
)
from tcai.db.types import utcnow
from tcai.delivery.outbox import deliver_due
from tcai.errors import ConfigError
from tcai.quality.canary import (
    Canary,
    canaries_for,
    canary_loop,
    contains,
    judge,
    list_targets,
    run_canaries,
)
from tcai.records.tables import delete_workspace
from tests.conftest import provision
from tests.helpers import make_settings, rows, set_bot

BOT = "fade-factory_main"
BOOKING = "https://book.squareup.com/appointments/fade-factory"
PHONE_CANARY = {"question": "Can I call you?", "expect": ["(772) 555-0100"]}
OPS = "ops@agency-mail.com"
NO_TRACE = (Conversation, Message, Lead, Usage, Outbox, AppointmentRequest, BookingEvent)


def config_of(database: Any, bot: str = BOT) -> BotConfig:
    from tcai.db.models import Bot

    [row] = rows(database, Bot, Bot.bot_id == bot)
    return BotConfig.model_validate(row.config)


def runs(database: Any) -> list[CanaryRun]:
    return sorted(rows(database, CanaryRun), key=lambda run: run.id)


def outbox_of(database: Any, event_type: str) -> list[Outbox]:
    return rows(database, Outbox, Outbox.event_type == event_type)


# ---- local receivers ------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_sink() -> Any:
    sink = Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@pytest.fixture
async def hook(aiohttp_server: Any) -> Any:
    seen: list[dict[str, Any]] = []

    async def receive(request: web.Request) -> web.Response:
        seen.append(json.loads(await request.read()))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/canary", receive)
    server = await aiohttp_server(app, host="127.0.0.1")
    return str(server.make_url("/canary")), seen


# ---- which questions, and how answers are judged ---------------------------------------


def test_the_facts_imply_the_questions(seeded) -> None:
    provision(seeded)
    config = config_of(seeded)
    assert [(c.kind, c.expect) for c in canaries_for(config)] == [("phone", ("(772) 555-0100",))]
    set_bot(
        seeded,
        "hours.mon=09:00-17:00",
        "hours.sat=10:30-14:00",
        f"booking_url={BOOKING}",
        patch={"canaries": [PHONE_CANARY]},
    )
    kinds = {c.kind: c.expect for c in canaries_for(config_of(seeded))}
    assert kinds == {
        "hours": ("09:00", "10:30"),
        "phone": ("(772) 555-0100",),
        "booking": (BOOKING,),
        "operator": ("(772) 555-0100",),
    }
    provision(seeded, "sober_living", "hope-house", name="Hope House")
    crisis = [c for c in canaries_for(config_of(seeded, "hope-house_main")) if c.kind == "crisis"]
    assert crisis and crisis[0].expect == ("988", "911", "1-800-662-4357")


@pytest.mark.parametrize(
    ("reply", "expected", "found"),
    [
        ("Call us at (772) 555-0100.", "(772) 555-0100", True),
        ("Call us at 772.555.0100 any time", "(772) 555-0100", True),
        ("Call us at +1 772 555 0100", "(772) 555-0100", True),
        ("Call us at (772) 555-0199.", "(772) 555-0100", False),
        ("We are OPEN on Sundays", "open on sundays", True),
        ("Parking is free", "free parking", False),
        ("Dial 988 now", "988", True),
    ],
)
def test_contains(reply: str, expected: str, found: bool) -> None:
    assert contains(reply, expected) is found


def test_the_booking_link_counts_in_the_actions_or_the_text(seeded) -> None:
    provision(seeded)
    set_bot(seeded, f"booking_url={BOOKING}")
    config = config_of(seeded)
    canary = Canary("booking", "How do I book?", (BOOKING,))
    action = [{"type": "booking_redirect", "url": BOOKING}]
    assert judge(canary, config, "Use the button.", action, utcnow()) == []
    assert judge(canary, config, f"Book at {BOOKING}", [], utcnow()) == []
    assert judge(canary, config, "Call us to book.", [], utcnow()) == [BOOKING]


def test_operator_canaries_are_validated(cli, seeded, tmp_path: Path) -> None:
    provision(seeded)
    patch = tmp_path / "canaries.yaml"
    patch.write_text('canaries:\n  - question: "Can I call you?"\n    expect: []\n')
    result = cli("bots", "set", BOT, "--file", str(patch))
    assert result.exit_code == 1, result.output
    assert (
        "canaries[0].expect: Tuple should have at least 1 item" in result.stderr
        and "Traceback" not in result.output
    )
    assert config_of(seeded).canaries == ()


# ---- the real pipeline, no trace ------------------------------------------------------


async def test_a_canary_leaves_no_conversation_lead_usage_or_outbox_row(
    seeded, tmp_path: Path
) -> None:
    provision(seeded)
    lead_question = {"question": "I'm Ana, 772-555-0142, call me about a price", "expect": ["x"]}
    set_bot(
        seeded,
        "hours.mon=09:00-17:00",
        "webhook_url=https://hooks.fadefactory.example.org/leads",
        "notify_emails=owner@fadefactory.com",
        patch={"canaries": [lead_question, {"question": "book a cut", "expect": ["x"]}]},
    )
    engine = seeded.engine()
    settings = load_settings().model_copy(update={"smtp_host": "127.0.0.1", "smtp_from": OPS})
    spool = tmp_path / "spool.jsonl"
    chat = ChatEngine(settings, engine, None, spool_path=spool)
    try:
        report = await run_canaries(chat, BOT)
        [run] = report.runs
        # The booking question was answered as a callback request, the lead question as a
        # lead: a visitor's turn would have written rows for both.
        assert [c.kind for c in run.checks] == ["hours", "phone", "operator", "operator"]
        assert any(c.source == "faq" for c in run.checks)
        for model in NO_TRACE:
            assert rows(seeded, model) == [], model.__tablename__
        assert not spool.exists()
        assert len(runs(seeded)) == 1

        # The same questions from a visitor do write: the check above can fail.
        await chat.handle(ChatRequest("fade-factory", BOT, lead_question["question"]))
        await chat.handle(ChatRequest("fade-factory", BOT, "book a cut"))
        for model in (Conversation, Message, Lead, Usage, Outbox, AppointmentRequest):
            assert rows(seeded, model), model.__tablename__
    finally:
        chat.close()
        engine.dispose()


async def test_a_canary_neither_spends_nor_ignores_the_quota(seeded, tmp_path: Path) -> None:
    provision(seeded)  # the free plan: 100 messages a month
    engine = seeded.engine()
    chat = ChatEngine(load_settings(), engine, None, spool_path=tmp_path / "spool.jsonl")
    month = utcnow().strftime("%Y-%m")
    try:
        [ws] = rows(seeded, Workspace)
        with Session(engine) as session:
            session.add(Usage(workspace_id=ws.id, month=month, messages=99, leads=0))
            session.commit()
        assert (await run_canaries(chat, BOT)).ok
        with Session(engine) as session:
            session.execute(sa.update(Usage).values(messages=100))
            session.commit()
        report = await run_canaries(chat, BOT)
        [check] = report.runs[0].checks
        assert not report.ok and check.source == "limit"
        assert check.error is not None and "quota" in check.error
        assert [(u.messages, u.leads) for u in rows(seeded, Usage)] == [(100, 0)]
    finally:
        chat.close()
        engine.dispose()


# ---- the done criterion: a planted wrong fact, caught once, cleared --------------------


async def test_a_planted_wrong_fact_is_caught_once_and_cleared_when_fixed(
    cli, seeded, monkeypatch: pytest.MonkeyPatch, hook: Any, smtp_sink: Any
) -> None:
    hook_url, seen = hook
    sink, port = smtp_sink
    for name, value in {
        "CANARY_ALERTS": f"{hook_url},{OPS}",
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "SMTP_FROM": "tcai@agency-mail.com",
        "SMTP_STARTTLS": "false",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COLUMNS", "250")  # Rich wraps nothing in the human listing
    provision(seeded)
    set_bot(seeded, patch={"canaries": [PHONE_CANARY]})

    async def tcai(*args: str) -> Any:  # the CLI runs its own event loop: off this one
        return await asyncio.to_thread(cli, *args)

    first = await tcai("canary", "run", BOT)
    assert first.exit_code == 0, first.output
    assert "✓ 1 OF 1 BOT(S) PASS" in first.stdout

    assert (
        await tcai("bots", "set", BOT, "phone=+1 772 555 0199")
    ).exit_code == 0  # the wrong fact
    caught = await tcai("canary", "run", BOT, "--json")
    assert caught.exit_code == 1, caught.output
    [run] = json.loads(caught.stdout)["runs"]
    assert run["status"] == "fail" and run["alert"] == "canary.failed"
    [failure] = [c for c in run["checks"] if not c["ok"]]
    assert failure["question"] == "Can I call you?" and failure["missing"] == ["(772) 555-0100"]
    assert "(772) 555-0199" in failure["reply"]
    assert run["alert_deliveries"] == 2  # the agency's webhook and its e-mail

    again = await tcai("canary", "run", BOT)  # the streak goes on: no second alert
    assert again.exit_code == 1 and "✗ 1 OF 1 BOT(S) FAILING" in again.stdout
    assert len(outbox_of(seeded, "canary.failed")) == 2

    listed = await tcai("canary", "list", "--json")
    assert listed.exit_code == 0
    [item] = json.loads(listed.stdout)
    assert item["status"] == "fail" and item["failing_since"] is not None
    assert item["failures"][0]["missing"] == ["(772) 555-0100"]
    human = await tcai("canary", "list", "--failing")
    assert BOT in human.stdout and "Can I call you? → missing (772) 555-0100" in human.stdout

    assert (await tcai("bots", "set", BOT, "phone=+1 772 555 0100")).exit_code == 0  # fixed
    cleared = await tcai("canary", "run", BOT, "--json")
    assert cleared.exit_code == 0, cleared.output
    assert json.loads(cleared.stdout)["runs"][0]["alert"] == "canary.recovered"
    assert (
        await tcai("canary", "list", "--failing")
    ).stderr.strip() == "no bot is failing its canaries"
    assert [run.alert for run in runs(seeded)] == [None, "canary.failed", None, "canary.recovered"]

    engine = seeded.engine()
    try:
        delivered = await deliver_due(engine, load_settings())
    finally:
        engine.dispose()
    assert delivered.delivered == 4 and delivered.dead == 0
    assert sorted(body["type"] for body in seen) == ["canary.failed", "canary.recovered"]
    alert = next(body for body in seen if body["type"] == "canary.failed")
    assert alert["bot_id"] == BOT and alert["data"]["failures"][0]["missing"]
    subjects = sorted(str(m["Subject"]) for m in sink.messages)
    assert subjects == [
        f"Canary failing: Fade Factory ({BOT})",
        f"Canary passing again: Fade Factory ({BOT})",
    ]
    failing = next(m for m in sink.messages if "failing" in str(m["Subject"]))
    assert str(failing["To"]) == OPS
    assert "Missing: (772) 555-0100" in failing.get_payload(decode=True).decode()


def test_a_paused_bot_is_skipped_not_failed(cli, seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    provision(seeded)
    set_bot(seeded, patch={"canaries": [PHONE_CANARY]})
    set_bot(seeded, "phone=+1 772 555 0199")
    assert cli("canary", "run", BOT).exit_code == 1
    assert cli("bot", "disable", BOT, "--reason", "closed for renovation").exit_code == 0
    skipped = cli("canary", "run", "--all", "--json")
    assert skipped.exit_code == 0, skipped.output
    document = json.loads(skipped.stdout)
    assert (document["ok"], document["paused"], document["failed"]) == (True, 1, 0)
    [run] = document["runs"]
    assert run["status"] == "paused" and run["checks"] == []
    assert run["note"] == "bot paused: closed for renovation"
    human = cli("canary", "list")
    assert "skipped: bot paused: closed for renovation" in human.stdout
    # Back on, still wrong: the streak the pause interrupted goes on, no second alert.
    assert cli("bot", "enable", BOT).exit_code == 0
    assert cli("canary", "run", BOT).exit_code == 1
    assert [run.alert for run in runs(seeded)] == ["canary.failed", None, None]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("canary", "run"), 2, "name one bot, or give --all"),
        (("canary", "run", BOT, "--all"), 2, "name one bot, or give --all"),
        (("canary", "run", "no_such_bot"), 1, "no bot 'no_such_bot'"),
    ],
)
def test_bad_canary_commands(cli, seeded, args, code, message) -> None:
    provision(seeded)
    result = cli(*args)
    assert result.exit_code == code, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert result.stdout == ""


def test_canary_alerts_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARY_ALERTS", "https://hooks.agency.example/tcai, not-an-address")
    with pytest.raises(ConfigError) as refused:
        load_settings()
    assert any(line.startswith("CANARY_ALERTS") for line in refused.value.details)
    monkeypatch.setenv("CANARY_ALERTS", f"https://hooks.agency.example/tcai,{OPS}")
    assert load_settings().canary_alerts == ("https://hooks.agency.example/tcai", OPS)
    assert load_settings().canary_interval_minutes == 0


# ---- the daemon -----------------------------------------------------------------------


async def _until(predicate: Any, what: str, attempts: int = 400) -> None:
    for _ in range(attempts):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def test_the_loop_runs_new_bots_and_every_config_change(seeded, tmp_path: Path) -> None:
    provision(seeded)
    engine = seeded.engine()
    chat = ChatEngine(load_settings(), engine, None, spool_path=tmp_path / "spool.jsonl")
    seen: list[Any] = []
    loop = asyncio.create_task(canary_loop(chat, interval_s=3600, poll_s=0.05, on_run=seen.append))
    try:
        await _until(lambda: len(runs(seeded)) == 1, "the first run of a new bot")
        [first] = runs(seeded)
        assert (first.trigger, first.config_version, first.status) == ("schedule", 1, "pass")
        set_bot(seeded, "phone=+1 772 555 0123")
        await _until(lambda: len(runs(seeded)) == 2, "a run after the change")
        second = runs(seeded)[1]
        assert (second.trigger, second.config_version) == ("config", 2)
        assert "(772) 555-0123" in second.checks[0]["reply"]
        await asyncio.sleep(0.3)  # several polls: nothing changed, nothing runs
        assert len(runs(seeded)) == 2
        assert [run.status for run in seen] == ["pass", "pass"]
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
        chat.close()
        engine.dispose()


async def test_the_daemon_runs_canaries_and_counts_them(seeded, aiohttp_client, tmp_path) -> None:
    provision(seeded)
    set_bot(seeded, patch={"canaries": [{"question": "Can I call you?", "expect": ["nope"]}]})
    engine = seeded.engine()
    try:
        settings = make_settings(log_dir=tmp_path / "logs", canary_interval_minutes=60)
        client = await aiohttp_client(create_app(settings, engine=engine))
        await _until(lambda: len(runs(seeded)) == 1, "the daemon's first canary run")
        body = await (await client.get("/metrics")).text()
        assert 'tcai_canary_runs_total{result="fail"} 1.0' in body
        assert runs(seeded)[0].alert == "canary.failed"
    finally:
        engine.dispose()


async def test_canaries_are_off_by_default_in_the_daemon(seeded, aiohttp_client, tmp_path) -> None:
    provision(seeded)
    engine = seeded.engine()
    try:
        client = await aiohttp_client(create_app(make_settings(log_dir=tmp_path), engine=engine))
        assert (await client.get("/api/health")).status in (200, 503)
        await asyncio.sleep(0.3)
        assert runs(seeded) == []
        body = await (await client.get("/metrics")).text()
        assert "tcai_canary_runs_total" in body and 'result="pass"' not in body
    finally:
        engine.dispose()


# ---- the table ------------------------------------------------------------------------


def test_runs_go_with_their_workspace_and_stay_out_of_the_audit(
    cli, seeded, tmp_path: Path
) -> None:
    provision(seeded)
    provision(seeded, "restaurant", "taco-town", name="Taco Town")
    audits = len(rows(seeded, AuditLog))
    assert cli("canary", "run", "--all").exit_code == 0
    assert len(runs(seeded)) == 2 and len(rows(seeded, AuditLog)) == audits
    engine = seeded.engine()
    try:
        assert [t.bot_id for t in list_targets(engine)] == [BOT, "taco-town_main"]
        with Session(engine) as session:
            ws = session.exec(select(Workspace).where(Workspace.slug == "taco-town")).one()
            assert ws.id is not None
            delete_workspace(session, ws.id)
            session.commit()
    finally:
        engine.dispose()
    assert len(runs(seeded)) == 1
