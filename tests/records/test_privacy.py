"""`tcai privacy export | erase` over data written by the real chat pipeline."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, SQLModel, select
from typer.testing import CliRunner

import tcai.records.privacy as privacy_module
from tcai.audit import record_audit
from tcai.cli import privacy_cmd
from tcai.cli.main import app
from tcai.db.models import (
    AppointmentRequest,
    AuditLog,
    BookingEvent,
    Conversation,
    Lead,
    LoginAttempt,
    Message,
    Outbox,
    OutboxAttempt,
    SystemLog,
    Workspace,
)
from tcai.db.types import utcnow
from tcai.records.privacy import Identifier, erase_person, make_person
from tests.conftest import provision

ROSA_EMAIL = "rosa.diaz@brightmail.co"
ROSA_PHONE = "+17725550142"
# Every way Rosa's identifiers may be written somewhere in the database.
ROSA_FORMS = (
    ROSA_EMAIL,
    ROSA_PHONE,
    "7725550142",
    "772-555-0142",
    "(772) 555-0142",
    "772.555.0142",
)
LEO_EMAIL = "leo.park@brightmail.co"
LEO_PHONE = "+17725550177"
HOOK = "https://hooks.example.org/x"


def _engine(database):
    return database.engine()


def all_rows(database, model, *where):
    engine = _engine(database)
    try:
        with Session(engine) as session:
            return list(session.exec(select(model).where(*where)))
    finally:
        engine.dispose()


def dump_database(database) -> str:
    """Every text and JSON value of every table, as one string to search."""
    engine = _engine(database)
    parts: list[str] = []
    try:
        with engine.connect() as conn:
            for table in SQLModel.metadata.sorted_tables:
                columns = [
                    c for c in table.columns if isinstance(c.type, sa.String | sa.Text | sa.JSON)
                ]
                if not columns:
                    continue
                for row in conn.execute(sa.select(*columns)):
                    parts += [json.dumps(v) if not isinstance(v, str) else v for v in row]
    finally:
        engine.dispose()
    return "\n".join(parts)


def rosa_mentions(text: str) -> list[str]:
    return [form for form in ROSA_FORMS if form in text]


@dataclass
class World:
    database: object
    sessions: dict[str, str]


async def say(chat, message, session=None, client="fade-factory", bot="fade-factory_main"):
    reply = await chat.say(message, session=session, client=client, bot=bot)
    return reply.session_id


@pytest.fixture
async def world(facts_chat, seeded, cli) -> World:
    """Two businesses with webhooks; Rosa and Leo talk to both; logs that mention them."""
    provision(seeded)
    provision(seeded, template="auto", slug="joes-garage", name="Joe's Garage")
    for bot in ("fade-factory_main", "joes-garage_main"):
        result = cli("bots", "set", bot, f"webhook_url={HOOK}")
        assert result.exit_code == 0, result.output
    chat = facts_chat
    sessions: dict[str, str] = {}
    sessions["rosa_booking"] = await say(chat, f"Hi, I'm Rosa Diaz, 772-555-0142, {ROSA_EMAIL}")
    await say(chat, "I'd like to book an appointment", sessions["rosa_booking"])
    sessions["rosa_crisis"] = await say(chat, "I don't want to live anymore")
    await say(chat, "you can call me at (772) 555-0142", sessions["rosa_crisis"])
    # Someone else mentions Rosa's number in passing: the conversation is about her too.
    sessions["mention"] = await say(chat, "my friend said to text 772.555.0142, is that you?")
    sessions["rosa_garage"] = await say(
        chat,
        "This is Rosa, 7725550142, can I get an estimate for my brakes?",
        client="joes-garage",
        bot="joes-garage_main",
    )
    sessions["leo"] = await say(chat, f"I'm Leo, 772-555-0177, {LEO_EMAIL}, I'd like to book")
    sessions["leo_garage"] = await say(
        chat, "I'm Leo 772-555-0177, estimate please", client="joes-garage", bot="joes-garage_main"
    )
    sessions["anonymous"] = await say(chat, "do you take walk-ins?")

    engine = _engine(seeded)
    try:
        with Session(engine) as session:
            ff = session.exec(select(Workspace).where(Workspace.slug == "fade-factory")).one()
            rows = session.exec(select(Outbox).order_by(Outbox.id)).all()
            # Rosa's first webhook was delivered, Leo's first one died after a 500.
            rosa_created = next(
                o
                for o in rows
                if o.event_type == "lead.created" and ROSA_PHONE in json.dumps(o.payload)
            )
            rosa_created.status, rosa_created.delivered_at = "delivered", utcnow()
            session.add(rosa_created)
            session.add(OutboxAttempt(outbox_id=rosa_created.id, status_code=200, duration_ms=40))
            pending = next(
                o for o in rows if o.event_type == "booking.requested" and o.workspace_id == ff.id
            )
            session.add(
                OutboxAttempt(
                    outbox_id=pending.id, status_code=500, error="HTTP 500 for 772-555-0142"
                )
            )
            leo_created = next(
                o
                for o in rows
                if o.event_type == "lead.created" and LEO_PHONE in json.dumps(o.payload)
            )
            leo_created.status = "dead"
            session.add(leo_created)
            session.add(OutboxAttempt(outbox_id=leo_created.id, status_code=500, error="HTTP 500"))
            session.add(
                SystemLog(
                    level="error",
                    source="tcai.delivery.outbox",
                    message="SMTP refused the notice for (772) 555-0142",
                    details={"lead": {"phone": ROSA_PHONE}},
                    workspace_id=ff.id,
                )
            )
            session.add(
                SystemLog(
                    level="error",
                    source="tcai.chat",
                    message="unrelated failure",
                    details={"email": ROSA_EMAIL.upper()},
                )
            )
            session.add(
                SystemLog(
                    level="warning",
                    source="tcai.chat",
                    message=f"bounce for {LEO_EMAIL}",
                    workspace_id=ff.id,
                )
            )
            record_audit(
                session,
                actor="owner@fadefactory.test",
                action="lead.update",
                target="lead",
                workspace_id=ff.id,
                before={"email": ROSA_EMAIL, "status": "new"},
                after={"status": "contacted"},
                reason="called Rosa back on 772-555-0142",
            )
            record_audit(
                session,
                actor="owner@fadefactory.test",
                action="lead.update",
                target="lead",
                workspace_id=ff.id,
                after={"email": LEO_EMAIL, "status": "contacted"},
            )
            session.add(LoginAttempt(email=ROSA_EMAIL, ip="203.0.113.0", success=False))
            session.add(LoginAttempt(email=LEO_EMAIL, ip="203.0.113.0", success=False))
            session.commit()
    finally:
        engine.dispose()
    return World(seeded, sessions)


def session_ids(database, *names, world) -> set[str]:
    return {world.sessions[name] for name in names}


def export(cli, *args) -> dict:
    result = cli("privacy", "export", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ---- export ---------------------------------------------------------------------------------


async def test_export_holds_every_record_about_the_person_and_nothing_of_another(
    cli, world
) -> None:
    document = export(cli, "--email", "Rosa.Diaz@BrightMail.co")
    records = document["records"]
    assert document["identifiers"]["given"] == {"kind": "email", "value": ROSA_EMAIL}
    assert document["identifiers"]["phones"] == [ROSA_PHONE]
    assert document["workspace"] is None and document["generated_at"]

    leads = all_rows(world.database, Lead)
    rosa_leads = {lead.id for lead in leads if lead.phone == ROSA_PHONE}
    assert len(rosa_leads) == 2, "one lead per business"
    assert {r["id"] for r in records["lead"]} == rosa_leads

    wanted = {world.sessions[n] for n in ("rosa_booking", "rosa_crisis", "mention", "rosa_garage")}
    assert {c["session_id"] for c in records["conversation"]} == wanted
    conversations = {c["id"] for c in records["conversation"]}
    assert any(c["flag_crisis"] for c in records["conversation"])
    expected_messages = {
        m.id for m in all_rows(world.database, Message) if m.conversation_id in conversations
    }
    assert {m["id"] for m in records["message"]} == expected_messages
    assert len(expected_messages) == 12

    assert {r["lead_id"] for r in records["appointment_request"]} <= rosa_leads
    assert len(records["appointment_request"]) == 2
    assert {e["conversation_id"] for e in records["booking_event"]} <= conversations
    assert len(records["booking_event"]) == 2
    types = sorted(o["event_type"] for o in records["outbox"])
    assert "conversation.flagged" in types and "booking.requested" in types
    assert types.count("lead.created") == 2
    assert all(
        o["payload"]["client_id"] in {"fade-factory", "joes-garage"} for o in records["outbox"]
    )
    assert len(records["outbox_attempt"]) == 2
    assert [a["reason"] for a in records["audit_log"]] == ["called Rosa back on 772-555-0142"]
    assert len(records["system_log"]) == 2
    assert [a["email"] for a in records["login_attempt"]] == [ROSA_EMAIL]
    assert document["counts"] == {table: len(rows) for table, rows in records.items()}

    text = json.dumps(document)
    for other in ("Leo", LEO_EMAIL, LEO_PHONE, "772-555-0177", world.sessions["anonymous"]):
        assert other not in text


async def test_export_by_phone_in_any_written_form_finds_the_same_records(cli, world) -> None:
    by_email = export(cli, "--email", ROSA_EMAIL)
    by_phone = export(cli, "--phone", "(772) 555-0142")
    assert by_phone["identifiers"]["given"] == {"kind": "phone", "value": ROSA_PHONE}
    assert by_phone["counts"] == by_email["counts"]


async def test_export_to_a_file_is_private(cli, world, tmp_path) -> None:
    target = tmp_path / "rosa.json"
    result = cli("privacy", "export", "--phone", "772-555-0142", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert oct(os.stat(target).st_mode)[-3:] == "600"
    assert json.loads(target.read_text())["counts"]["lead"] == 2


async def test_export_is_audited_without_the_identifier(cli, world) -> None:
    export(cli, "--email", ROSA_EMAIL)
    entry = all_rows(world.database, AuditLog, AuditLog.action == "privacy.export")[0]
    assert rosa_mentions(json.dumps([entry.before, entry.after, entry.target])) == []


# ---- erase ----------------------------------------------------------------------------------


async def test_erase_removes_or_anonymises_the_person_in_every_table(cli, world) -> None:
    db = world.database
    leo_before = export(cli, "--email", LEO_EMAIL)["counts"]
    before = {m.__tablename__: len(all_rows(db, m)) for m in (Message, Conversation, Lead)}
    result = cli("privacy", "erase", "--email", ROSA_EMAIL, "--yes", "--json")
    assert result.exit_code == 0, result.output
    receipt = json.loads(result.stdout)
    assert receipt["nothing_found"] is False
    assert receipt["identifier"]["kind"] == "email"
    assert receipt["identifier"]["sha256"] == Identifier("email", ROSA_EMAIL).sha256
    assert receipt["deleted"]["lead"] == 2
    assert receipt["deleted"]["conversation"] == 4
    assert receipt["deleted"]["message"] == 12
    assert receipt["deleted"]["appointment_request"] == 2
    assert receipt["deleted"]["booking_event"] == 2
    assert receipt["deleted"]["login_attempt"] == 1
    assert receipt["anonymised"] == {
        "outbox": 1,
        "outbox_attempt": 0,
        "audit_log": 1,
        "system_log": 2,
    }
    assert receipt["deleted"]["outbox_attempt"] == 1  # the pending row's failed attempt

    # Each table, queried directly.
    assert [lead.phone for lead in all_rows(db, Lead)] == [LEO_PHONE, LEO_PHONE]
    remaining = {c.session_id for c in all_rows(db, Conversation)}
    assert remaining == {world.sessions[n] for n in ("leo", "leo_garage", "anonymous")}
    assert len(all_rows(db, Message)) == before["message"] - 12
    assert all(r.phone == LEO_PHONE for r in all_rows(db, AppointmentRequest))
    conversation_ids = {c.id for c in all_rows(db, Conversation)}
    assert all(e.conversation_id in conversation_ids for e in all_rows(db, BookingEvent))
    kept = [o for o in all_rows(db, Outbox) if o.payload == {"erased": True}]
    assert [o.status for o in kept] == ["delivered"]
    assert all(
        o.status != "pending" or LEO_PHONE in json.dumps(o.payload) for o in all_rows(db, Outbox)
    )
    assert [
        a.status_code for a in all_rows(db, OutboxAttempt, OutboxAttempt.outbox_id == kept[0].id)
    ] == [200]
    reasons = [a.reason for a in all_rows(db, AuditLog, AuditLog.action == "lead.update")]
    assert "called Rosa back on [erased]" in reasons
    messages = sorted(s.message for s in all_rows(db, SystemLog))
    assert "SMTP refused the notice for [erased]" in messages
    assert [a.email for a in all_rows(db, LoginAttempt)] == [LEO_EMAIL]

    # Nothing of Rosa anywhere: every text and JSON column of every table.
    assert rosa_mentions(dump_database(db)) == []
    # Leo is untouched.
    assert export(cli, "--email", LEO_EMAIL)["counts"] == leo_before

    entries = all_rows(db, AuditLog, AuditLog.action == "privacy.erase")
    assert len(entries) == 1
    entry = entries[0]
    assert entry.after["identifier_sha256"] == receipt["identifier"]["sha256"]
    assert entry.after["deleted"] == receipt["deleted"]
    assert entry.before["found"]["lead"] == 2
    assert rosa_mentions(json.dumps([entry.before, entry.after, entry.target, entry.reason])) == []


async def test_erase_prints_a_receipt(cli, world) -> None:
    result = cli("privacy", "erase", "--phone", "772 555 0142", "--yes")
    assert result.exit_code == 0, result.output
    assert "erasure receipt" in result.stdout
    assert "✓ erased phone sha256:" in result.stdout
    assert "conversation" in result.stdout and "anonymised" in result.stdout
    assert rosa_mentions(result.output) == []


async def test_erasing_someone_who_is_not_there(cli, world) -> None:
    result = cli("privacy", "erase", "--email", "nobody.here@brightmail.co", "--yes")
    assert result.exit_code == 0, result.output
    assert "nothing found" in result.stdout
    as_json = cli("privacy", "erase", "--phone", "+1 415 555 0100", "--yes", "--json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["nothing_found"] is True
    assert len(all_rows(world.database, Lead)) == 4


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--email", "rosa.diaz@"], 1, "--email: 'rosa.diaz@' is not a valid e-mail address"),
        (["--email", "rosa@example.com"], 1, "--email"),
        (["--phone", "555-1234"], 1, "--phone: '555-1234' is not a valid phone number"),
        (["--phone", "123-456-7890"], 1, "--phone"),
        ([], 2, "exactly one of --email or --phone"),
        (["--email", ROSA_EMAIL, "--phone", ROSA_PHONE], 2, "exactly one of --email or --phone"),
        (
            ["--email", ROSA_EMAIL, "--workspace", "nope"],
            1,
            "no workspace 'nope'; see tcai clients list",
        ),
    ],
)
@pytest.mark.parametrize("command", ["export", "erase"])
async def test_bad_input_is_refused_and_nothing_changes(
    cli, facts_chat, barber, command, args, code, message
) -> None:
    await facts_chat.say(f"I'm Rosa, 772-555-0142, {ROSA_EMAIL}")
    extra = ["--yes"] if command == "erase" else []
    result = cli("privacy", command, *args, *extra)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert len(all_rows(facts_chat.database, Lead)) == 1


async def test_workspace_scopes_the_erasure(cli, world) -> None:
    db = world.database
    document = export(cli, "--email", ROSA_EMAIL, "--workspace", "joes-garage")
    assert document["workspace"] == "joes-garage"
    assert [c["session_id"] for c in document["records"]["conversation"]] == [
        world.sessions["rosa_garage"]
    ]
    assert document["counts"]["login_attempt"] == 0, "global rows are outside a workspace"
    assert document["counts"]["system_log"] == 0

    result = cli(
        "privacy", "erase", "--phone", ROSA_PHONE, "--workspace", "joes-garage", "--yes", "--json"
    )
    assert result.exit_code == 0, result.output
    receipt = json.loads(result.stdout)
    assert receipt["workspace"] == "joes-garage"
    assert receipt["deleted"]["lead"] == 1 and receipt["deleted"]["conversation"] == 1

    rosa = [lead for lead in all_rows(db, Lead) if lead.phone == ROSA_PHONE]
    assert [lead.email for lead in rosa] == [ROSA_EMAIL], "the barber's lead stays"
    sessions = {c.session_id for c in all_rows(db, Conversation)}
    assert world.sessions["rosa_garage"] not in sessions
    assert world.sessions["rosa_booking"] in sessions
    assert len(all_rows(db, LoginAttempt)) == 2
    assert any(ROSA_EMAIL.upper() in json.dumps(s.details) for s in all_rows(db, SystemLog))
    assert export(cli, "--email", ROSA_EMAIL)["counts"]["lead"] == 1


def set_status(database, slug: str, status: str) -> None:
    engine = _engine(database)
    try:
        with Session(engine) as session:
            ws = session.exec(select(Workspace).where(Workspace.slug == slug)).one()
            ws.status = status
            session.add(ws)
            session.commit()
    finally:
        engine.dispose()


async def test_demo_safe_mode_protects_demo_workspaces(cli, world, monkeypatch) -> None:
    set_status(world.database, "joes-garage", "demo")
    monkeypatch.setenv("DEMO_SAFE_MODE", "true")
    refused = cli("privacy", "erase", "--email", ROSA_EMAIL, "--yes")
    assert refused.exit_code == 1, refused.output
    assert "DEMO_SAFE_MODE" in refused.stderr and "'joes-garage'" in refused.stderr
    scoped = cli("privacy", "erase", "--email", ROSA_EMAIL, "--workspace", "joes-garage", "--yes")
    assert scoped.exit_code == 1 and "DEMO_SAFE_MODE" in scoped.stderr
    assert len(all_rows(world.database, Lead)) == 4, "a refusal erases nothing"

    elsewhere = cli(
        "privacy", "erase", "--email", ROSA_EMAIL, "--workspace", "fade-factory", "--yes"
    )
    assert elsewhere.exit_code == 0, elsewhere.output
    assert [
        lead.workspace_id for lead in all_rows(world.database, Lead) if lead.phone == ROSA_PHONE
    ]

    monkeypatch.setenv("DEMO_SAFE_MODE", "false")
    # The barber's lead that linked her e-mail to her phone is gone: erase by the phone.
    allowed = cli("privacy", "erase", "--phone", ROSA_PHONE, "--yes")
    assert allowed.exit_code == 0, allowed.output
    assert not [lead for lead in all_rows(world.database, Lead) if lead.phone == ROSA_PHONE]


async def test_erase_needs_yes_off_a_terminal_and_asks_on_one(world, monkeypatch) -> None:
    runner = CliRunner()
    refused = runner.invoke(app, ["privacy", "erase", "--email", ROSA_EMAIL])
    assert refused.exit_code == 2
    assert "--yes" in refused.stderr
    monkeypatch.setattr(privacy_cmd, "_stdin_is_terminal", lambda: True)
    declined = runner.invoke(app, ["privacy", "erase", "--email", ROSA_EMAIL], input="n\n")
    assert declined.exit_code == 1
    assert "found in every client" in declined.stderr
    assert len(all_rows(world.database, Lead)) == 4
    accepted = runner.invoke(app, ["privacy", "erase", "--email", ROSA_EMAIL], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert len(all_rows(world.database, Lead)) == 2


async def test_erase_is_one_transaction(world, monkeypatch) -> None:
    def broken(*_args, **_kwargs):
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(privacy_module, "record_audit", broken)
    engine = _engine(world.database)
    try:
        with pytest.raises(RuntimeError):
            erase_person(engine, email=ROSA_EMAIL)
    finally:
        engine.dispose()
    assert rosa_mentions(dump_database(world.database)) != []
    assert len(all_rows(world.database, Lead)) == 4
    assert len(all_rows(world.database, OutboxAttempt)) == 3


# ---- recognising a person in text ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("call +17725550142", True),
        ("call +1 (772) 555-0142 now", True),
        ("call 1-772-555-0142", True),
        ("call (772)555-0142.", True),
        ("772.555.0142", True),
        ("my number: 7725550142", True),
        ('{"phone": "+17725550142"}', True),
        ("Mail ROSA.DIAZ@BRIGHTMAIL.CO please", True),
        ("https://book.example.org/?email=rosa.diaz%40brightmail.co", True),
        ("call 772-555-0143", False),
        ("order 77725550142", False),
        ("card 47725550142999", False),
        ("rosa.diaz@brightmail.com", False),
        ("xrosa.diaz@brightmail.co", False),
    ],
)
def test_mentions_of_the_person(text, found) -> None:
    person = make_person(Identifier("email", ROSA_EMAIL), (), [ROSA_PHONE])
    assert person.mentions(text) is found
    assert person.mentions({"nested": [text]}) is found
    if found:
        assert "[erased]" in person.redact(text)
        assert not person.mentions(person.redact(text))


def test_identifier_hash_is_sha256_of_the_normalised_value() -> None:
    import hashlib

    assert Identifier("email", ROSA_EMAIL).sha256 == hashlib.sha256(ROSA_EMAIL.encode()).hexdigest()


async def test_erase_report_time_is_recent(world) -> None:
    engine = _engine(world.database)
    try:
        receipt = erase_person(engine, phone="772-555-0177")
    finally:
        engine.dispose()
    assert utcnow() - receipt.erased_at < timedelta(minutes=1)
    assert receipt.deleted["lead"] == 2 and receipt.linked_identifiers == 1
