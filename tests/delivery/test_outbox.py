"""The outbox: webhooks and owner e-mails delivered from real leads to real local servers.

Receivers are aiohttp servers and raw sockets on 127.0.0.1 (so the settings allow private
targets, except in the SSRF tests), the e-mail goes to an aiosmtpd sink, and every pass
of `deliver_due` gets an explicit `now` instead of the test sleeping.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import secrets
import socket
import struct
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from pydantic import SecretStr
from sqlmodel import Session

from tcai.bots.service import change_bot
from tcai.config import load_settings, new_secret
from tcai.daemon.app import create_app
from tcai.db.models import AuditLog, Outbox, OutboxAttempt, SystemLog
from tcai.db.types import utcnow
from tcai.delivery.outbox import (
    LEASE,
    backoff_cap,
    backoff_delay,
    claim_due,
    deliver_due,
    list_outbox,
    retry_item,
)
from tcai.delivery.webhooks import TargetRefused, check_target, refusal_reason, sign, verify
from tcai.errors import ConfigError
from tests.conftest import provision
from tests.helpers import ALLOWED, rows

OWNER = "owner@fadefactory.com"


# ---- local servers --------------------------------------------------------------------


@dataclass
class Receiver:
    """An aiohttp webhook receiver: `mode` picks the answer, `seen` keeps every request."""

    secret: str
    mode: str = "ok"
    delay: float = 0.0
    seen: list[dict[str, Any]] = field(default_factory=list)
    landing_hits: int = 0
    base: str = ""

    @property
    def url(self) -> str:
        return f"{self.base}/hook"

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.append({"headers": dict(request.headers), "body": body})
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.mode == "fail":
            return web.Response(status=500, text="upstream exploded")
        if self.mode == "redirect":
            # Somewhere private: the metadata service, then a page of ours to prove it.
            raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")
        if self.mode == "redirect_local":
            raise web.HTTPTemporaryRedirect(f"{self.base}/landing")
        return web.json_response({"ok": True})

    async def landing(self, request: web.Request) -> web.Response:
        self.landing_hits += 1
        return web.json_response({"ok": True})


@pytest.fixture
async def receiver(aiohttp_server: Any) -> Receiver:
    hook = Receiver(secret=secrets.token_hex(16))
    app = web.Application()
    app.router.add_post("/hook", hook.hook)
    app.router.add_route("*", "/landing", hook.landing)
    server = await aiohttp_server(app, host="127.0.0.1")
    hook.base = str(server.make_url("")).rstrip("/")
    return hook


@dataclass
class RawServer:
    """A TCP server that never answers (`hang`) or resets every connection (`reset`)."""

    port: int
    connections: int = 0


async def _raw_server(mode: str) -> AsyncIterator[RawServer]:
    state = RawServer(port=0)
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        if mode == "reset":
            await reader.read(1)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        writers.append(writer)
        await reader.read(65536)  # then say nothing, forever

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        for writer in writers:
            writer.transport.abort()
        server.close()


@pytest.fixture
async def hanging() -> AsyncIterator[RawServer]:
    async for state in _raw_server("hang"):
        yield state


@pytest.fixture
async def resetting() -> AsyncIterator[RawServer]:
    async for state in _raw_server("reset"):
        yield state


class Sink:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_sink() -> Iterator[tuple[Sink, int]]:
    sink = Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


# ---- helpers --------------------------------------------------------------------------


def settings_for(**overrides: Any):
    base = {"webhook_allow_private": True, "widget_secret": SecretStr(new_secret())}
    return load_settings().model_copy(update={**base, **overrides})


def smtp_settings(port: int, **overrides: Any):
    return settings_for(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_from="tcai@agency-mail.com",
        smtp_starttls=False,
        **overrides,
    )


def set_hooks(database, bot: str = "fade-factory_main", **patch: Any) -> None:
    engine = database.engine()
    try:
        change_bot(engine, bot, patch=patch)
    finally:
        engine.dispose()


def add_item(database, target: str, *, channel: str = "webhook", event_type: str = "lead.created"):
    engine = database.engine()
    try:
        with Session(engine) as session:
            event_id = secrets.token_hex(16)
            row = Outbox(
                event_id=event_id,
                event_type=event_type,
                channel=channel,
                target=target,
                payload={"id": event_id, "type": event_type, "data": {"name": "Ana"}},
                next_attempt_at=utcnow(),
            )
            session.add(row)
            session.commit()
            session.refresh(row)
            return row.id
    finally:
        engine.dispose()


def item(database, outbox_id: int) -> Outbox:
    return rows(database, Outbox, Outbox.id == outbox_id)[0]


def attempts(database, outbox_id: int) -> list[OutboxAttempt]:
    return sorted(
        rows(database, OutboxAttempt, OutboxAttempt.outbox_id == outbox_id), key=lambda a: a.id
    )


class Highest(random.Random):
    """Full jitter at its upper bound, so the backoff schedule is visible."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
async def engine(migrated):
    engine = migrated.engine()
    yield engine
    engine.dispose()


# ---- settings -------------------------------------------------------------------------


def test_outbox_settings_defaults() -> None:
    settings = load_settings()
    assert settings.smtp_host is None and not settings.smtp_enabled
    assert (settings.smtp_port, settings.smtp_starttls) == (587, True)
    assert settings.outbox_max_attempts == 12
    assert settings.webhook_allow_private is False


def test_smtp_settings_are_validated_and_the_password_masked(monkeypatch, cli) -> None:
    password = secrets.token_urlsafe(18)
    monkeypatch.setenv("SMTP_HOST", "smtp.agency-mail.com")
    monkeypatch.setenv("SMTP_PASSWORD", password)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert [line.split(":")[0] for line in caught.value.details] == ["SMTP_FROM"]
    monkeypatch.setenv("SMTP_FROM", "not an address")
    with pytest.raises(ConfigError):
        load_settings()
    monkeypatch.setenv("SMTP_FROM", "tcai@agency-mail.com")
    assert load_settings().smtp_enabled
    result = cli("config", "show", "--json")
    assert result.exit_code == 0, result.output
    view = json.loads(result.stdout)
    assert view["SMTP_PASSWORD"] == "********" and password not in result.output
    assert view["SMTP_HOST"] == "smtp.agency-mail.com"


def test_private_webhooks_are_refused_in_production(monkeypatch) -> None:
    monkeypatch.setenv("TCAI_ENV", "production")
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "true")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert any(line.startswith("WEBHOOK_ALLOW_PRIVATE:") for line in caught.value.details)


# ---- signatures -----------------------------------------------------------------------

VECTOR_SECRET = "tcai-test-vector-key"
VECTOR_BODY = b'{"id":"evt_1","type":"lead.created"}'
VECTOR_HEADER = "t=1700000000,v1=bcaa1937d172c87d6e8be5b97aa03a04e1bf60f8aa44a61210e3928201d4c233"


def test_the_published_test_vector() -> None:
    import tcai.delivery.webhooks

    assert sign(VECTOR_SECRET, VECTOR_BODY, 1700000000) == VECTOR_HEADER
    assert VECTOR_HEADER in (tcai.delivery.webhooks.__doc__ or "")
    assert verify(VECTOR_SECRET, VECTOR_HEADER, VECTOR_BODY, now=1700000000 + 299)


@pytest.mark.parametrize(
    ("secret", "header", "body", "now"),
    [
        ("another-key-entirely", VECTOR_HEADER, VECTOR_BODY, 1700000000),  # wrong secret
        (VECTOR_SECRET, VECTOR_HEADER, VECTOR_BODY + b" ", 1700000000),  # body changed
        (VECTOR_SECRET, VECTOR_HEADER, VECTOR_BODY, 1700000000 + 301),  # too old: a replay
        (VECTOR_SECRET, VECTOR_HEADER, VECTOR_BODY, 1700000000 - 301),  # from the future
        (
            VECTOR_SECRET,
            VECTOR_HEADER.replace("t=1700000000", "t=1700000001"),
            VECTOR_BODY,
            1700000000,
        ),
        (VECTOR_SECRET, "v1=" + VECTOR_HEADER.split("v1=")[1], VECTOR_BODY, 1700000000),  # no t
        (VECTOR_SECRET, "t=1700000000", VECTOR_BODY, 1700000000),  # no v1
        (VECTOR_SECRET, "t=soon,v1=abc", VECTOR_BODY, 1700000000),
        (VECTOR_SECRET, "garbage", VECTOR_BODY, 1700000000),
        (VECTOR_SECRET, "", VECTOR_BODY, 1700000000),
    ],
)
def test_verify_refuses(secret, header, body, now) -> None:
    assert not verify(secret, header, body, now=now)


def test_verify_accepts_any_of_several_signatures_during_a_rotation() -> None:
    other = sign("the-old-key-before-rotation", VECTOR_BODY, 1700000000).split(",")[1]
    assert verify(VECTOR_SECRET, f"{VECTOR_HEADER},{other}", VECTOR_BODY, now=1700000000)


# ---- backoff --------------------------------------------------------------------------


def test_backoff_doubles_from_30_seconds_to_a_24_hour_cap() -> None:
    caps = [backoff_cap(n) for n in range(1, 15)]
    assert caps[:6] == [30, 60, 120, 240, 480, 960]
    assert caps[11:] == [61440, 86400, 86400]  # the 13th wait would be 34 h: capped
    assert all(a <= b for a, b in itertools.pairwise(caps))
    assert backoff_cap(500) == 86400
    rng = random.Random(7)
    draws = [backoff_delay(3, rng).total_seconds() for _ in range(500)]
    assert all(0 <= d <= 120 for d in draws)
    assert min(draws) < 30 and max(draws) > 90  # full jitter spreads over the whole range


# ---- delivery of a real lead ------------------------------------------------------------


async def test_a_lead_is_delivered_signed_and_logged(facts_chat, barber, receiver) -> None:
    set_hooks(facts_chat.database, webhook_url=receiver.url, webhook_secret=receiver.secret)
    await facts_chat.say("I'm Ana, 772-555-0142, please call me about a fade")
    outbox = rows(facts_chat.database, Outbox)
    assert [o.event_type for o in outbox] == ["lead.created"]
    assert "webhook_secret" not in json.dumps(outbox[0].payload)
    assert receiver.secret not in json.dumps(outbox[0].payload)

    run = await deliver_due(facts_chat.engine, settings_for())
    assert (run.claimed, run.delivered) == (1, 1)
    assert len(receiver.seen) == 1
    request = receiver.seen[0]
    headers, body = request["headers"], request["body"]
    assert verify(receiver.secret, headers["X-TCAI-Signature"], body)
    assert not verify("not-the-bot-secret-at-all", headers["X-TCAI-Signature"], body)
    document = json.loads(body)
    assert headers["X-TCAI-Delivery"] == document["id"] == outbox[0].event_id
    assert headers["X-TCAI-Event"] == document["type"] == "lead.created"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("tcai/")
    assert document["data"]["phone"] == "+17725550142" and document["client_id"] == "fade-factory"

    delivered = item(facts_chat.database, outbox[0].id)
    assert delivered.status == "delivered" and delivered.delivered_at is not None
    assert delivered.attempts == 1 and delivered.last_error is None
    log = attempts(facts_chat.database, outbox[0].id)
    assert [(a.status_code, a.error) for a in log] == [(200, None)]
    assert log[0].duration_ms is not None and log[0].duration_ms >= 0
    # Nothing is due any more: a second pass sends nothing.
    assert (await deliver_due(facts_chat.engine, settings_for())).claimed == 0
    assert len(receiver.seen) == 1


async def test_the_signature_uses_the_secret_the_bot_has_at_delivery_time(
    facts_chat, barber, receiver
) -> None:
    set_hooks(facts_chat.database, webhook_url=receiver.url, webhook_secret=secrets.token_hex(16))
    await facts_chat.say("I'm Ana, 772-555-0142")
    rotated = secrets.token_hex(16)
    set_hooks(facts_chat.database, webhook_secret=rotated)
    await deliver_due(facts_chat.engine, settings_for())
    request = receiver.seen[0]
    assert verify(rotated, request["headers"]["X-TCAI-Signature"], request["body"])


async def test_a_bot_without_a_secret_sends_unsigned(facts_chat, barber, receiver) -> None:
    set_hooks(facts_chat.database, webhook_url=receiver.url)
    await facts_chat.say("I'm Ana, 772-555-0142")
    await deliver_due(facts_chat.engine, settings_for())
    assert "X-TCAI-Signature" not in receiver.seen[0]["headers"]


async def test_the_owner_gets_an_email_about_a_new_lead(facts_chat, barber, smtp_sink) -> None:
    sink, port = smtp_sink
    set_hooks(facts_chat.database, notify_emails=[OWNER, "desk@fadefactory.com"])
    facts_chat.settings = smtp_settings(port)
    await facts_chat.say("I'm Ana, 772-555-0142, ana@mail-host.com, I need a fade")
    queued = rows(facts_chat.database, Outbox)
    assert sorted(o.target for o in queued) == sorted([OWNER, "desk@fadefactory.com"])
    assert {o.channel for o in queued} == {"email"}

    run = await deliver_due(facts_chat.engine, facts_chat.settings)
    assert run.delivered == 2
    assert sorted(rcpt[0] for rcpt, _ in sink.messages) == sorted([OWNER, "desk@fadefactory.com"])
    message = next(m for rcpt, m in sink.messages if rcpt == [OWNER])
    assert message["Subject"] == "New lead: Ana"
    assert message["From"] == "tcai@agency-mail.com" and message["To"] == OWNER
    assert message["Reply-To"] == "ana@mail-host.com"
    assert message["X-TCAI-Delivery"] in {o.event_id for o in queued}
    text = message.get_payload(decode=True).decode()
    assert "Fade Factory" in text and "+17725550142" in text and "Name: Ana" in text
    assert all(o.status == "delivered" for o in rows(facts_chat.database, Outbox))


async def test_no_email_rows_without_smtp(facts_chat, barber) -> None:
    set_hooks(facts_chat.database, notify_emails=[OWNER])
    await facts_chat.say("I'm Ana, 772-555-0142")
    assert rows(facts_chat.database, Outbox) == []


async def test_an_unreachable_smtp_server_is_retried(engine, migrated) -> None:
    outbox_id = add_item(migrated, OWNER, channel="email")
    run = await deliver_due(engine, smtp_settings(_free_port()), now=utcnow())
    assert run.retried == 1
    row = item(migrated, outbox_id)
    assert row.status == "pending" and row.attempts == 1 and "SMTP failed" in row.last_error


# ---- bad targets ----------------------------------------------------------------------


async def test_a_target_that_hangs_times_out_and_is_retried(engine, migrated, hanging) -> None:
    outbox_id = add_item(migrated, f"http://127.0.0.1:{hanging.port}/hook")
    now = utcnow()
    run = await deliver_due(engine, settings_for(), now=now, timeout_s=0.5)
    assert (run.claimed, run.retried) == (1, 1)
    row = item(migrated, outbox_id)
    assert row.status == "pending" and row.attempts == 1
    assert "timed out" in row.last_error
    assert now <= row.next_attempt_at <= now + timedelta(seconds=30)
    log = attempts(migrated, outbox_id)
    assert len(log) == 1 and log[0].status_code is None and "timed out" in log[0].error
    assert hanging.connections == 1


async def test_a_500_is_retried_with_a_growing_wait(engine, migrated, receiver) -> None:
    receiver.mode = "fail"
    outbox_id = add_item(migrated, receiver.url)
    now = utcnow()
    waits = []
    for _ in range(4):
        await deliver_due(engine, settings_for(), now=now, rng=Highest())
        row = item(migrated, outbox_id)
        waits.append((row.next_attempt_at - now).total_seconds())
        now = row.next_attempt_at
    assert waits == [30, 60, 120, 240]
    row = item(migrated, outbox_id)
    assert row.status == "pending" and row.attempts == 4 and row.last_error == "HTTP 500"
    assert [a.status_code for a in attempts(migrated, outbox_id)] == [500] * 4
    assert len(receiver.seen) == 4


@pytest.mark.parametrize("mode", ["redirect", "redirect_local"])
async def test_a_redirect_is_a_failure_and_never_followed(engine, migrated, receiver, mode) -> None:
    receiver.mode = mode
    outbox_id = add_item(migrated, receiver.url)
    run = await deliver_due(engine, settings_for(), now=utcnow())
    assert run.retried == 1
    row = item(migrated, outbox_id)
    assert row.status == "pending"
    assert "redirects are not followed" in row.last_error
    assert attempts(migrated, outbox_id)[0].status_code in (302, 307)
    assert receiver.landing_hits == 0 and len(receiver.seen) == 1


async def test_a_reset_connection_is_a_failure(engine, migrated, resetting) -> None:
    outbox_id = add_item(migrated, f"http://127.0.0.1:{resetting.port}/hook")
    run = await deliver_due(engine, settings_for(), now=utcnow())
    assert run.retried == 1
    row = item(migrated, outbox_id)
    assert row.status == "pending" and row.last_error.startswith("connection failed")
    assert resetting.connections == 1


# ---- the SSRF guard ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("169.254.10.10", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "shared address space (CGNAT)"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("::ffff:127.0.0.1", "loopback (inside IPv6 ::ffff:7f00:1)"),
        ("::ffff:169.254.169.254", "cloud metadata (inside IPv6 ::ffff:a9fe:a9fe)"),
        ("2002:7f00:1::", "loopback (inside IPv6 2002:7f00:1::)"),
        ("2002:a00:1::", "private (inside IPv6 2002:a00:1::)"),
        ("64:ff9b::a9fe:a9fe", "cloud metadata (inside IPv6 64:ff9b::a9fe:a9fe)"),
        ("192.0.0.192", "IETF protocol assignments"),
    ],
)
def test_refused_addresses(address, reason) -> None:
    import ipaddress

    assert refusal_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.215.14", "2606:4700::1111", "2002:808:808::"]
)
def test_public_addresses_pass(address) -> None:
    import ipaddress

    assert refusal_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost/hook",  # refused after resolution, not by name
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "https://10.0.0.8/hook",
        "https://100.64.1.1/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "http://8.8.8.8/hook",  # plain http
        "ftp://8.8.8.8/hook",
        "https:///nohost",
    ],
)
async def test_check_target_refuses(url) -> None:
    with pytest.raises(TargetRefused):
        await check_target(url, allow_private=False)


async def test_check_target_returns_the_vetted_addresses() -> None:
    assert await check_target("https://8.8.8.8/hook", allow_private=False) == ["8.8.8.8"]
    assert "127.0.0.1" in await check_target("http://localhost:9/hook", allow_private=True)


async def test_private_targets_are_refused_before_any_connection(
    engine, migrated, hanging, receiver
) -> None:
    ids = [
        add_item(migrated, f"https://127.0.0.1:{hanging.port}/hook"),
        add_item(migrated, f"https://localhost:{hanging.port}/hook"),
        add_item(migrated, "https://169.254.169.254/latest/meta-data/"),
        add_item(migrated, "https://192.168.0.10/hook"),
        add_item(migrated, receiver.url),  # http, and loopback
    ]
    run = await deliver_due(engine, settings_for(webhook_allow_private=False), now=utcnow())
    assert (run.claimed, run.retried, run.delivered) == (5, 5, 0)
    for outbox_id in ids:
        row = item(migrated, outbox_id)
        assert row.last_error.startswith("refused:"), row.last_error
    assert "cloud metadata" in item(migrated, ids[2]).last_error
    assert hanging.connections == 0 and receiver.seen == []


async def test_the_connection_is_pinned_to_the_vetted_address_and_keeps_the_name(
    engine, migrated, receiver
) -> None:
    port = receiver.base.rsplit(":", 1)[1]
    add_item(migrated, f"http://localhost:{port}/hook")
    run = await deliver_due(engine, settings_for(), now=utcnow())
    assert run.delivered == 1
    assert receiver.seen[0]["headers"]["Host"] == f"localhost:{port}"


# ---- dead letters ---------------------------------------------------------------------


async def test_dead_letters_are_listed_and_revived(
    engine, migrated, receiver, cli, monkeypatch
) -> None:
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "true")  # for `tcai outbox run`
    receiver.mode = "fail"
    outbox_id = add_item(migrated, receiver.url)
    settings = settings_for(outbox_max_attempts=3)
    now = utcnow()
    outcomes = []
    for _ in range(3):
        run = await deliver_due(engine, settings, now=now)
        outcomes.append(run.items[0].outcome)
        now = item(migrated, outbox_id).next_attempt_at + timedelta(seconds=1)
    assert outcomes == ["retry", "retry", "dead"]
    assert (await deliver_due(engine, settings, now=now + timedelta(days=2))).claimed == 0
    assert any("is dead after 3 attempts" in log.message for log in rows(migrated, SystemLog))

    result = cli("outbox", "list", "--status", "dead", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [(i["id"], i["status"], i["attempts"], i["last_error"]) for i in listed] == [
        (outbox_id, "dead", 3, "HTTP 500")
    ]
    assert json.loads(cli("outbox", "list", "--status", "pending", "--json").stdout) == []
    human = cli("outbox", "list", "--status", "dead")
    assert human.exit_code == 0 and "HTTP 500" in human.stdout

    result = cli("outbox", "retry", str(outbox_id), "--reason", "receiver fixed")
    assert result.exit_code == 0, result.output
    revived = item(migrated, outbox_id)
    assert revived.status == "pending" and revived.attempts == 3
    audit = rows(migrated, AuditLog, AuditLog.action == "outbox.retry")
    assert len(audit) == 1 and audit[0].before == {"status": "dead", "attempts": 3}
    assert audit[0].reason == "receiver fixed"

    receiver.mode = "ok"
    result = await asyncio.to_thread(cli, "outbox", "run", "--once", "--json")  # its own loop
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["delivered"] == 1
    shown = json.loads(cli("outbox", "show", str(outbox_id), "--json").stdout)
    assert shown["status"] == "delivered"
    assert [a["status_code"] for a in shown["log"]] == [500, 500, 500, 200]


async def test_outbox_cli_errors(migrated, engine, receiver, cli) -> None:
    assert cli("outbox", "list", "--status", "lost").exit_code == 2
    missing = cli("outbox", "retry", "999")
    assert missing.exit_code == 1 and "no outbox item 999" in missing.stderr
    outbox_id = add_item(migrated, receiver.url)
    await deliver_due(engine, settings_for(), now=utcnow())
    done = cli("outbox", "retry", str(outbox_id))
    assert done.exit_code == 1 and "already delivered" in done.stderr
    assert cli("outbox", "show", "999").exit_code == 1
    empty = cli("outbox", "list", "--status", "dead")
    assert empty.exit_code == 0 and "empty" in empty.stderr


def test_listing_hides_credentials_in_target_urls(engine, migrated) -> None:
    password = secrets.token_hex(8)
    add_item(migrated, f"https://hooks:{password}@hooks.fadefactory.example.org/x")
    with Session(engine) as session:
        listed = list_outbox(session)
    assert listed[0]["target"] == "https://hooks.fadefactory.example.org/x"
    assert password not in json.dumps(listed)


def test_retry_item_keeps_attempts_and_makes_it_due_now(engine, migrated) -> None:
    outbox_id = add_item(migrated, "https://hooks.fadefactory.example.org/x")
    later = utcnow() + timedelta(hours=3)
    summary = retry_item(engine, outbox_id, now=later)
    assert summary["status"] == "pending" and summary["attempts"] == 0
    with Session(engine) as session:
        assert list_outbox(session, "pending")[0]["next_attempt_at"] == later.isoformat()


# ---- at least once, never twice at once ---------------------------------------------------


async def test_no_delivery_is_lost_across_a_crash(engine, migrated, receiver) -> None:
    outbox_id = add_item(migrated, receiver.url)
    now = utcnow()
    claimed = claim_due(engine, now=now)  # the process dies here: nothing sent, nothing recorded
    assert [c.id for c in claimed] == [outbox_id]
    assert (await deliver_due(engine, settings_for(), now=now + LEASE / 2)).claimed == 0
    assert receiver.seen == []
    run = await deliver_due(engine, settings_for(), now=now + LEASE + timedelta(seconds=1))
    assert (run.claimed, run.delivered) == (1, 1)
    assert len(receiver.seen) == 1
    row = item(migrated, outbox_id)
    assert row.status == "delivered" and row.attempts == 1
    later = now + timedelta(days=1)
    assert (await deliver_due(engine, settings_for(), now=later)).claimed == 0
    assert len(receiver.seen) == 1


async def test_a_crash_after_sending_redelivers_with_the_same_delivery_id(
    engine, migrated, receiver, monkeypatch
) -> None:
    import tcai.delivery.outbox

    outbox_id = add_item(migrated, receiver.url)
    now = utcnow()

    class Killed(Exception):
        pass

    def crash(*_args, **_kwargs):
        raise Killed("the process died before recording")

    with monkeypatch.context() as patched:
        patched.setattr(tcai.delivery.outbox, "record_results", crash)
        with pytest.raises(Killed):
            await deliver_due(engine, settings_for(), now=now)
    assert len(receiver.seen) == 1 and item(migrated, outbox_id).status == "pending"
    run = await deliver_due(engine, settings_for(), now=now + LEASE + timedelta(seconds=1))
    assert run.delivered == 1
    ids = [r["headers"]["X-TCAI-Delivery"] for r in receiver.seen]
    assert len(ids) == 2 and ids[0] == ids[1]  # at least once: the receiver dedupes on it
    assert item(migrated, outbox_id).status == "delivered"


async def test_two_passes_at_once_never_send_a_row_twice(engine, migrated, receiver) -> None:
    receiver.delay = 0.2  # the second pass runs while the first is still delivering
    ids = {add_item(migrated, receiver.url) for _ in range(6)}
    now = utcnow()
    first, second = await asyncio.gather(
        deliver_due(engine, settings_for(), now=now),
        deliver_due(engine, settings_for(), now=now),
    )
    assert first.claimed + second.claimed == 6
    sent = [r["headers"]["X-TCAI-Delivery"] for r in receiver.seen]
    assert len(sent) == len(set(sent)) == 6
    assert {item(migrated, i).status for i in ids} == {"delivered"}
    assert all(len(attempts(migrated, i)) == 1 for i in ids)


async def test_a_late_result_after_the_lease_moved_on_does_not_steer_the_row(
    engine, migrated, receiver
) -> None:
    receiver.mode = "fail"
    outbox_id = add_item(migrated, receiver.url)
    now = utcnow()
    stale = claim_due(engine, now=now)
    # The lease runs out; another worker claims and succeeds.
    receiver.mode = "ok"
    await deliver_due(engine, settings_for(), now=now + LEASE + timedelta(seconds=1))
    from tcai.delivery.outbox import Delivery, record_results

    late = Delivery(stale[0].id, stale[0].event_id, "webhook", False, 500, "HTTP 500", 5)
    record_results(engine, stale, [late], now=now + LEASE * 2, max_attempts=12)
    row = item(migrated, outbox_id)
    assert row.status == "delivered" and late.outcome == "superseded"
    assert len(attempts(migrated, outbox_id)) == 2


# ---- the daemon -------------------------------------------------------------------------


async def test_the_daemon_delivers_a_lead_without_delaying_the_chat(
    seeded, aiohttp_client, receiver, tmp_path
) -> None:
    provision(seeded, allowed_origins=[ALLOWED])
    set_hooks(seeded, webhook_url=receiver.url, webhook_secret=receiver.secret)
    engine = seeded.engine()
    settings = settings_for(log_dir=tmp_path / "logs")
    client = await aiohttp_client(create_app(settings, engine=engine))
    try:
        await asyncio.sleep(0.1)  # the worker's first pass: nothing due yet
        config = await client.get(
            "/api/widget/config/fade-factory/fade-factory_main", headers={"Origin": ALLOWED}
        )
        token = (await config.json())["token"]
        response = await client.post(
            "/api/chat/fade-factory/fade-factory_main",
            json={"message": "I'm Ana, 772-555-0142, call me please"},
            headers={"Origin": ALLOWED, "Authorization": f"Bearer {token}"},
        )
        assert response.status == 200 and (await response.json())["lead_captured"]
        # Woken by the chat turn: no need to wait for the 5 s poll.
        for _ in range(60):
            if receiver.seen:
                break
            await asyncio.sleep(0.05)
        assert len(receiver.seen) == 1
        request = receiver.seen[0]
        assert verify(receiver.secret, request["headers"]["X-TCAI-Signature"], request["body"])
        for _ in range(60):
            if rows(seeded, Outbox)[0].status == "delivered":
                break
            await asyncio.sleep(0.05)
        assert rows(seeded, Outbox)[0].status == "delivered"
    finally:
        await client.close()
        engine.dispose()


async def test_a_row_erased_while_in_flight_is_skipped(engine, migrated, receiver) -> None:
    from tcai.delivery.outbox import Delivery, record_results

    outbox_id = add_item(migrated, receiver.url)
    claimed = claim_due(engine, now=utcnow())
    with Session(engine) as session:  # a privacy erase or retention purge, meanwhile
        session.delete(session.get(Outbox, outbox_id))
        session.commit()
    done = Delivery(outbox_id, claimed[0].event_id, "webhook", True, 200, None, 3)
    record_results(engine, claimed, [done], now=utcnow(), max_attempts=12)
    assert done.outcome == "superseded"
    assert rows(migrated, OutboxAttempt) == []
