"""Leads, conversations, audit and users from the CLI."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from tcai.access.users import password_problems, verify_password
from tcai.db.models import Lead, Lockout, Message, User, UserSession
from tcai.db.types import utcnow
from tests.helpers import rows

GOOD_PASSWORD = "correct horse battery staple"


async def test_leads_list_and_csv_export_is_formula_safe(cli, facts_chat, barber) -> None:
    await facts_chat.say("My name is Ana, 772-555-0142")
    await facts_chat.say('=HYPERLINK("http://evil") here, email +cmd@shopmail.com')
    engine = facts_chat.database.engine()
    with Session(engine) as session:
        lead = session.exec(select(Lead)).first()
        lead.name = "=cmd|' /C calc'!A0"
        session.add(lead)
        session.commit()
    engine.dispose()
    listed = json.loads(cli("leads", "list", "--workspace", "fade-factory", "--json").stdout)
    assert len(listed) == 2 and {"lead_id", "name", "phone", "email", "status"} <= set(listed[0])
    result = cli("leads", "export", "--workspace", "fade-factory", "--bom")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("\ufeff")
    table = list(csv.DictReader(io.StringIO(result.stdout.lstrip("\ufeff"))))
    names = {r["name"] for r in table}
    assert "'=cmd|' /C calc'!A0" in names
    emails = {r["email"] for r in table}
    assert "'+cmd@shopmail.com" in emails
    assert {r["phone"] for r in table} >= {"+1 772-555-0142"}  # text, no apostrophe
    for row in table:
        for column, value in row.items():
            if column != "phone":
                assert not value.startswith(("=", "+", "-", "@", "\t", "\r"))
    as_json = json.loads(
        cli("leads", "export", "--workspace", "fade-factory", "--format", "json").stdout
    )
    assert {r["name"] for r in as_json} >= {"=cmd|' /C calc'!A0"}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("leads", "list", "--workspace", "nope"), 1, "no workspace 'nope'; see tcai clients list"),
        (("leads", "list", "--workspace", "fade-factory", "--status", "hot"), 1, "--status"),
        (("leads", "list", "--workspace", "fade-factory", "--since", "last tuesday"), 1, "--since"),
        (("leads", "export", "--workspace", "fade-factory", "--format", "xml"), 2, "--format"),
        (("conversations", "show", "999"), 1, "no conversation '999'"),
    ],
)
def test_bad_input(cli, barber, args, code, message) -> None:
    result = cli(*args)
    assert result.exit_code == code, result.output
    assert message in result.stderr


async def test_leads_recover_imports_the_spool_once(
    cli, facts_chat, barber, isolated_env, monkeypatch
) -> None:
    from sqlalchemy.exc import OperationalError

    import tcai.chat.pipeline as pipeline_module

    def broken(*_a, **_k):
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    with monkeypatch.context() as patched:
        patched.setattr(pipeline_module, "persist_turn", broken)
        await facts_chat.say("I'm Mia, 772-555-0166")
        await facts_chat.say("I'm Bo, bo.lee@shopmail.com")
    spool = facts_chat.spool
    assert len(spool.read_text().splitlines()) == 2
    first = cli("leads", "recover", "--spool", str(spool), "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["imported"] == 2
    leads = rows(facts_chat.database, Lead)
    assert {(lead.name, lead.phone, lead.email, lead.source) for lead in leads} == {
        ("Mia", "+17725550166", None, "spool"),
        ("Bo", None, "bo.lee@shopmail.com", "spool"),
    }
    assert not spool.exists() or spool.read_text() == ""
    # The spooled turns are in the conversation log too, as if stored at the time.
    texts = {m.text for m in rows(facts_chat.database, Message) if m.role == "user"}
    assert {"I'm Mia, 772-555-0166", "I'm Bo, bo.lee@shopmail.com"} <= texts
    imported = spool.with_suffix(".jsonl.imported")
    spool.write_text(imported.read_text())
    again = json.loads(cli("leads", "recover", "--spool", str(spool), "--json").stdout)
    assert again == {**again, "imported": 0, "already_present": 2, "failed": []}
    assert len(rows(facts_chat.database, Lead)) == 2


async def test_conversations_list_and_show(cli, facts_chat, barber) -> None:
    reply = await facts_chat.say("do you take walk-ins?")
    await facts_chat.say("I want to kill myself", session=reply.session_id)
    listed = json.loads(
        cli("conversations", "list", "--workspace", "fade-factory", "--json").stdout
    )
    assert len(listed) == 1 and listed[0]["flags"] == ["crisis", "needs_review"]
    flagged = json.loads(
        cli("conversations", "list", "-w", "fade-factory", "--flagged", "--json").stdout
    )
    assert len(flagged) == 1
    shown = json.loads(cli("conversations", "show", reply.session_id, "--json").stdout)
    assert [m["source"] for m in shown["transcript"]] == ["visitor", "faq", "visitor", "crisis"]
    human = cli("conversations", "show", str(listed[0]["conversation_id"]))
    assert "bot (crisis)" in human.stdout and "visitor: do you take walk-ins?" in human.stdout


def test_audit_list_filters(cli, barber) -> None:
    cli("bots", "set", "fade-factory_main", "lead_capture=false", "--reason", "owner asked")
    entries = json.loads(cli("audit", "list", "--json").stdout)
    assert [e["action"] for e in entries][:2] == ["bot.update", "client.create"]
    only = json.loads(
        cli("audit", "list", "--action", "bot.", "--workspace", "fade-factory", "--json").stdout
    )
    assert [e["action"] for e in only] == ["bot.update"] and only[0]["reason"] == "owner asked"
    assert json.loads(cli("audit", "list", "--actor", "nobody", "--json").stdout) == []


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "at least 12"),
        ("password1234", "common"),
        ("Password123!", "common"),
        ("i-am-anabelle-2026", "e-mail name"),
        ("aaaaaaaaaaaaaaaa", "too few different"),
        ("x" * 129, "at most 128"),
    ],
)
def test_password_policy(password, problem) -> None:
    assert any(problem in p for p in password_problems(password, "anabelle@fadefactory.shop"))


def test_a_good_password_passes() -> None:
    assert password_problems(GOOD_PASSWORD, "ana@fadefactory.shop") == []


def test_users_lifecycle(cli, seeded, barber, monkeypatch) -> None:
    monkeypatch.setenv("TCAI_PASSWORD", GOOD_PASSWORD)
    made = cli("users", "create", "--email", "Ana@FadeFactory.shop", "-w", "fade-factory", "--json")
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["email"] == "ana@fadefactory.shop"
    assert cli("users", "create", "--email", "ana@fadefactory.shop").exit_code == 1
    engine = seeded.engine()
    with Session(engine) as session:
        user = session.exec(select(User)).one()
        assert (
            user.password_hash.startswith("$argon2id$") and GOOD_PASSWORD not in user.password_hash
        )
        assert verify_password(user.password_hash, GOOD_PASSWORD)
        session.add(
            UserSession(token_hash="a" * 64, user_id=user.id, csrf_token="c", expires_at=utcnow())
        )
        locked_until = utcnow() + timedelta(minutes=10)
        session.add(Lockout(email=user.email, failed_count=7, locked_until=locked_until))
        session.commit()
    monkeypatch.setenv("TCAI_PASSWORD", "password")
    weak = cli("users", "passwd", "ana@fadefactory.shop")
    assert weak.exit_code == 1 and "common" in weak.stderr
    monkeypatch.setenv("TCAI_PASSWORD", "an even longer pass phrase")
    assert "1 session(s) ended" in cli("users", "passwd", "ana@fadefactory.shop").stdout
    unlocked = cli("users", "unlock", "ana@fadefactory.shop").stdout.strip()
    assert unlocked.startswith("✓ unlocked ana@fadefactory.shop: it was locked until")
    assert cli("users", "disable", "ana@fadefactory.shop").exit_code == 0
    with Session(engine) as session:
        user = session.exec(select(User)).one()
        lockout = session.exec(select(Lockout)).one()
        assert user.disabled and lockout.failed_count == 0 and lockout.locked_until is None
        assert verify_password(user.password_hash, "an even longer pass phrase")
    engine.dispose()
    assert cli("users", "passwd", "ghost@fadefactory.shop").exit_code == 1
    bad = cli("users", "create", "--email", "not-an-email")
    assert bad.exit_code == 1 and "--email" in bad.stderr
    listed = json.loads(cli("users", "list", "--json").stdout)
    assert "password_hash" not in listed[0]


def test_users_need_a_password_source(cli, barber) -> None:
    result = cli("users", "create", "--email", "bo@fadefactory.shop")
    assert result.exit_code == 2 and "TCAI_PASSWORD" in result.stderr
