"""`tcai retention purge` and the daemon's daily run, over data from the real pipeline.

Data is written at chosen times through the chat engine's clock; the purge's `now` is then
moved forward, so each workspace's own retention days decide what goes.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlmodel import Session, select

import tcai.daemon.app as app_module
import tcai.records.retention as retention_module
from tcai.chat.pipeline import ChatRequest
from tcai.cli.context import os_actor
from tcai.config import load_settings
from tcai.daemon.app import create_app
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
from tcai.records.retention import PurgeReport, purge, purge_daily
from tests.conftest import provision

HOOK = "https://hooks.example.org/x"
MODELS = (
    Message,
    Conversation,
    BookingEvent,
    AppointmentRequest,
    Lead,
    SystemLog,
    AuditLog,
    Outbox,
    OutboxAttempt,
    LoginAttempt,
)


def all_rows(database, model, *where):
    engine = database.engine()
    try:
        with Session(engine) as session:
            return list(session.exec(select(model).where(*where)))
    finally:
        engine.dispose()


def sizes(database) -> dict[str, int]:
    return {m.__tablename__: len(all_rows(database, m)) for m in MODELS}


@dataclass
class Timeline:
    database: object
    base: datetime
    sessions: dict[str, str]
    ws: dict[str, int]

    def day(self, n: float) -> datetime:
        return self.base + timedelta(days=n)


async def say_at(chat, when, message, session=None, client="fade-factory"):
    engine = chat.make()
    engine.clock = lambda: when
    reply = await engine.handle(ChatRequest(client, f"{client}_main", message, session))
    return reply.session_id


@pytest.fixture
async def timeline(facts_chat, seeded, cli) -> Timeline:
    """fade-factory keeps conversations 30 days, leads 60, logs 10; joes-garage the
    defaults (365, 730, 90)."""
    provision(seeded)
    provision(seeded, template="auto", slug="joes-garage", name="Joe's Garage")
    for bot in ("fade-factory_main", "joes-garage_main"):
        assert cli("bots", "set", bot, f"webhook_url={HOOK}").exit_code == 0
    base = utcnow()
    t = Timeline(seeded, base, {}, {})
    chat = facts_chat
    s = t.sessions
    s["ana_old"] = await say_at(
        chat, t.day(0), "I'm Ana, 772-555-0142, I'd like to book an appointment"
    )
    s["ben_old"] = await say_at(chat, t.day(0), "I'm Ben, 772-555-0177")
    s["anon_old"] = await say_at(chat, t.day(0), "do you take walk-ins?")
    s["ana_back"] = await say_at(chat, t.day(50), "hi again, it's Ana, 772-555-0142")
    s["ben_new"] = await say_at(
        chat, t.day(65), "ben.ortiz@brightmail.co is my email, 772-555-0177"
    )
    s["joe"] = await say_at(
        chat, t.day(0), "This is Joe, 772-555-0188, estimate for my brakes", client="joes-garage"
    )

    engine = seeded.engine()
    try:
        with Session(engine) as session:
            ws = {w.slug: w for w in session.exec(select(Workspace))}
            t.ws = {slug: w.id for slug, w in ws.items()}
            ff = ws["fade-factory"]
            ff.retention_conversation_days, ff.retention_lead_days, ff.retention_log_days = (
                30,
                60,
                10,
            )
            session.add(ff)
            convs = {c.session_id: c for c in session.exec(select(Conversation))}
            bot_id = convs[s["anon_old"]].bot_id
            # A redirect click with no lead, and rows that lost both their links.
            session.add(
                BookingEvent(
                    workspace_id=ff.id,
                    bot_id=bot_id,
                    conversation_id=convs[s["anon_old"]].id,
                    handling="external",
                    provider="Booksy",
                    url="https://booksy.com/en-us/123_fade-factory",
                    created_at=t.day(0),
                )
            )
            session.add(
                BookingEvent(
                    workspace_id=ff.id, bot_id=bot_id, handling="external", created_at=t.day(0)
                )
            )
            session.add(
                AppointmentRequest(
                    workspace_id=ff.id,
                    bot_id=bot_id,
                    appointment_type="request_callback",
                    details={},
                    created_at=t.day(0),
                    updated_at=t.day(0),
                )
            )
            outbox = {
                (o.workspace_id, o.event_type, o.payload["data"].get("name")): o
                for o in session.exec(select(Outbox))
            }
            ana_created = outbox[(ff.id, "lead.created", "Ana")]
            ana_created.status, ana_created.delivered_at = "delivered", t.day(1)
            ben_created = outbox[(ff.id, "lead.created", "Ben")]
            ben_created.status = "dead"
            ben_updated = outbox[(ff.id, "lead.updated", "Ben")]
            ben_updated.status, ben_updated.delivered_at = "delivered", t.day(65)
            booking = next(o for k, o in outbox.items() if k[:2] == (ff.id, "booking.requested"))
            for row in (ana_created, ben_created, ben_updated):
                session.add(row)
            for outbox_id, code in (
                (ana_created.id, 500),
                (ana_created.id, 200),
                (ben_created.id, 500),
                (booking.id, 500),
                (ben_updated.id, 200),
            ):
                session.add(
                    OutboxAttempt(outbox_id=outbox_id, status_code=code, attempted_at=t.day(1))
                )
            for workspace_id, when in (
                (ff.id, 0),
                (ff.id, 65),
                (ws["joes-garage"].id, 0),
                (None, 0),
            ):
                session.add(
                    SystemLog(
                        level="error",
                        source="test",
                        message=f"day {when}",
                        workspace_id=workspace_id,
                        at=t.day(when),
                    )
                )
            session.add(AuditLog(actor="test", action="note", workspace_id=ff.id, at=t.day(65)))
            session.add(LoginAttempt(email="owner@fadefactory.test", at=t.day(0)))
            session.add(LoginAttempt(email="owner@fadefactory.test", at=t.day(80)))
            session.commit()
    finally:
        engine.dispose()
    return t


class StatementLog:
    """DELETE statements and their row counts, and commits, as the database saw them."""

    def __init__(self, engine) -> None:
        self.deletes: list[tuple[str, int]] = []
        self.commits = 0
        event.listen(engine, "after_cursor_execute", self._executed)
        event.listen(engine, "commit", self._committed)

    def _executed(self, _conn, cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM"):
            table = statement.split()[2].strip('"')
            self.deletes.append((table, cursor.rowcount))

    def _committed(self, _conn) -> None:
        self.commits += 1

    def batches(self, table: str) -> list[int]:
        return [count for name, count in self.deletes if name == table and count > 0]


def run_purge(database, now, **kwargs) -> tuple[PurgeReport, StatementLog]:
    engine = database.engine()
    log = StatementLog(engine)
    try:
        report = purge(engine, now=now, **kwargs)
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    finally:
        engine.dispose()
    return report, log


def counts_of(report: PurgeReport, slug: str) -> dict[str, int]:
    return next(item.counts for item in report.workspaces if item.slug == slug)


EXPECTED_DAY_70 = {
    "message": 6,
    "conversation": 3,
    "booking_event": 3,
    "appointment_request": 2,
    "lead": 1,
    "system_log": 1,
    "outbox": 2,
    "outbox_attempt": 3,
    "login_attempt": 0,
}


async def test_purge_deletes_exactly_what_each_workspace_no_longer_keeps(timeline) -> None:
    t, db = timeline, timeline.database
    before = sizes(db)
    old_audits = {
        a.id
        for a in all_rows(
            db, AuditLog, AuditLog.workspace_id == t.ws["fade-factory"], AuditLog.at < t.day(60)
        )
    }
    assert len(old_audits) >= 2, "client.create and the webhook change"

    dry, dry_log = run_purge(db, t.day(70), dry_run=True, batch_size=2)
    assert sizes(db) == before, "a dry run deletes nothing"
    assert dry_log.deletes == [] and dry.batches == 0
    assert not all_rows(db, AuditLog, AuditLog.action == "retention.purge")

    report, log = run_purge(db, t.day(70), batch_size=2)
    ff = counts_of(report, "fade-factory")
    assert ff == {**EXPECTED_DAY_70, "audit_log": len(old_audits)}
    assert counts_of(dry, "fade-factory") == ff, "the dry run counted the same rows"
    assert sum(counts_of(report, "joes-garage").values()) == 0
    assert sum(report.unassigned.values()) == 0
    after = {k: v - report.totals()[k] for k, v in before.items()}
    assert sizes(db) == {**after, "audit_log": after["audit_log"] + 1}, "+ the purge's own entry"

    # Conversations went by their own days, even the one of Ben, whose lead stays.
    sessions = {c.session_id: c for c in all_rows(db, Conversation)}
    assert set(sessions) == {t.sessions[n] for n in ("ana_back", "ben_new", "joe")}
    assert sessions[t.sessions["ana_back"]].lead_id is None, "Ana's lead went"
    leads = all_rows(db, Lead)
    assert sorted(lead.name for lead in leads) == ["Ben", "Joe"]
    assert next(lead for lead in leads if lead.name == "Ben").conversation_id is None
    assert {m.conversation_id for m in all_rows(db, Message)} == {c.id for c in sessions.values()}
    assert [e.workspace_id for e in all_rows(db, BookingEvent)] == [t.ws["joes-garage"]]
    assert [r.workspace_id for r in all_rows(db, AppointmentRequest)] == [t.ws["joes-garage"]]
    assert [
        s.message for s in all_rows(db, SystemLog, SystemLog.workspace_id == t.ws["fade-factory"])
    ] == ["day 65"]
    assert not old_audits & {a.id for a in all_rows(db, AuditLog)}
    outbox = all_rows(db, Outbox, Outbox.workspace_id == t.ws["fade-factory"])
    assert sorted(o.status for o in outbox) == ["delivered", "pending"], "pending is never purged"
    assert {a.outbox_id for a in all_rows(db, OutboxAttempt)} <= {
        o.id for o in all_rows(db, Outbox)
    }

    # In batches of at most two ids, each its own transaction.
    assert all(count <= 2 for _, count in log.deletes)
    assert log.batches("conversation") == [2, 1]
    assert log.batches("message") == [2, 2, 2]
    # One DELETE by id per batch; the clean-up statements before it find nothing left.
    assert report.batches == len([count for _, count in log.deletes if count > 0])
    assert log.commits >= report.batches + 1

    entries = all_rows(db, AuditLog, AuditLog.action == "retention.purge")
    assert len(entries) == 1
    assert entries[0].after["counts"] == report.totals()
    assert entries[0].after["workspaces"] == {"fade-factory": sum(ff.values()), "joes-garage": 0}


async def test_a_year_later_the_defaults_apply_and_leads_outlive_conversations(timeline) -> None:
    t, db = timeline, timeline.database
    run_purge(db, t.day(70), batch_size=2)
    report, log = run_purge(db, t.day(400), batch_size=2)
    garage = counts_of(report, "joes-garage")
    assert garage["conversation"] == 1 and garage["message"] == 2
    assert garage["lead"] == 0, "Joe's lead is kept 730 days"
    assert garage["booking_event"] == 0 and garage["appointment_request"] == 0
    assert garage["system_log"] == 1 and garage["audit_log"] >= 2
    assert counts_of(report, "fade-factory")["lead"] == 1
    assert report.unassigned["login_attempt"] == 2
    assert report.unassigned["system_log"] == 1
    assert report.unassigned["audit_log"] >= 1, "the first purge's own entry, among others"

    assert all_rows(db, Conversation) == []
    [joe] = all_rows(db, Lead)
    assert joe.name == "Joe"
    [request] = all_rows(db, AppointmentRequest)
    assert (request.lead_id, request.conversation_id) == (joe.id, None)
    [booking] = all_rows(db, BookingEvent)
    assert (booking.lead_id, booking.conversation_id) == (joe.id, None)
    assert all(o.status == "pending" for o in all_rows(db, Outbox))
    assert all(count <= 2 for _, count in log.deletes)
    assert [a.action for a in all_rows(db, AuditLog)] == ["retention.purge"]


async def test_demo_workspaces_are_skipped_in_demo_safe_mode(timeline, cli, monkeypatch) -> None:
    t, db = timeline, timeline.database
    engine = db.engine()
    with Session(engine) as session:
        garage = session.get(Workspace, t.ws["joes-garage"])
        garage.status = "demo"
        session.add(garage)
        session.commit()
    engine.dispose()
    report, _ = run_purge(db, t.day(400), demo_safe_mode=True)
    assert report.skipped == ["joes-garage"]
    assert sum(counts_of(report, "joes-garage").values()) == 0
    assert [c.workspace_id for c in all_rows(db, Conversation)] == [t.ws["joes-garage"]]
    assert all_rows(db, SystemLog, SystemLog.workspace_id == t.ws["joes-garage"])
    entry = all_rows(db, AuditLog, AuditLog.action == "retention.purge")[0]
    assert entry.after["skipped"] == ["joes-garage"]

    monkeypatch.setenv("DEMO_SAFE_MODE", "true")
    result = cli("retention", "purge")
    assert result.exit_code == 0, result.output
    assert "skipped joes-garage: demo workspace protected by DEMO_SAFE_MODE" in result.stderr
    as_json = cli("retention", "purge", "--dry-run", "--json")
    assert json.loads(as_json.stdout)["skipped"] == ["joes-garage"]


def test_the_cli_purges_and_reports(cli, migrated) -> None:
    engine = migrated.engine()
    with Session(engine) as session:
        session.add(LoginAttempt(email="old@fadefactory.test", at=utcnow() - timedelta(days=91)))
        session.add(LoginAttempt(email="new@fadefactory.test", at=utcnow() - timedelta(days=89)))
        session.commit()
    engine.dispose()
    dry = cli("retention", "purge", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    document = json.loads(dry.stdout)
    assert (document["dry_run"], document["total"], document["counts"]["login_attempt"]) == (
        True,
        1,
        1,
    )
    assert len(all_rows(migrated, LoginAttempt)) == 2
    assert all_rows(migrated, AuditLog) == []
    done = cli("retention", "purge")
    assert done.exit_code == 0, done.output
    assert "✓ deleted 1 rows in 1 batches" in done.stdout
    assert [a.email for a in all_rows(migrated, LoginAttempt)] == ["new@fadefactory.test"]
    [entry] = all_rows(migrated, AuditLog)
    assert (entry.action, entry.after["total"]) == ("retention.purge", 1)
    assert entry.actor == os_actor()  # the operating-system user, e.g. cli:alice


def test_bad_batch_size_is_refused(migrated) -> None:
    engine = migrated.engine()
    try:
        with pytest.raises(ValueError):
            purge(engine, batch_size=0)
    finally:
        engine.dispose()


async def test_the_daily_loop_survives_a_failed_run(monkeypatch, caplog) -> None:
    calls: list[int] = []

    def flaky(*_args, **_kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return PurgeReport(dry_run=False, now=utcnow(), batch_size=500)

    monkeypatch.setattr(retention_module, "purge", flaky)
    with caplog.at_level(logging.INFO, logger="tcai.records.retention"):
        task = asyncio.create_task(
            purge_daily(sa.create_engine("sqlite://"), first_delay=0, interval=0.01)
        )
        for _ in range(300):
            if len(calls) >= 3:
                break
            await asyncio.sleep(0.01)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(calls) >= 3
    messages = [r.getMessage() for r in caplog.records]
    assert any("retention purge failed: RuntimeError" in m for m in messages)
    assert any("retention purge done" in m for m in messages)


async def test_the_daemon_purges_shortly_after_start(
    migrated, aiohttp_client, tmp_path, monkeypatch
) -> None:
    engine = migrated.engine()
    with Session(engine) as session:
        session.add(LoginAttempt(email="old@fadefactory.test", at=utcnow() - timedelta(days=200)))
        session.commit()
    monkeypatch.setattr(app_module, "purge_daily", functools.partial(purge_daily, first_delay=0.05))
    settings = load_settings().model_copy(update={"log_dir": tmp_path / "logs"})
    await aiohttp_client(create_app(settings, engine=engine))
    for _ in range(200):  # the purge, then its audit entry, land a moment apart
        if not all_rows(migrated, LoginAttempt) and all_rows(
            migrated, AuditLog, AuditLog.action == "retention.purge"
        ):
            break
        await asyncio.sleep(0.05)
    assert all_rows(migrated, LoginAttempt) == []
    [entry] = all_rows(migrated, AuditLog, AuditLog.action == "retention.purge")
    assert entry.actor == "daemon"
    engine.dispose()
