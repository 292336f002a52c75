"""The client's life from the CLI: show, update, plan, suspend, resume, delete, and a lead's
status (docs/cli.md, "Client lifecycle").

Every command runs through the real root app and its error boundary on the test database;
what a visitor then gets is asked of the real chat engine (`facts_chat`), whose bot cache
checks the change signal on every turn, so a change that forgets to raise it is served
stale and fails here.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr
from sqlmodel import Session, col, select

from tcai.bots.service import set_bot_status
from tcai.chat.rules import load_rules
from tcai.cli.context import os_actor
from tcai.config import load_settings, new_secret
from tcai.daemon.app import create_app
from tcai.daemon.keys import DIRECTORY
from tcai.db.models import (
    WORKSPACE_PLANS,
    AuditLog,
    Bot,
    Conversation,
    Lead,
    Message,
    Outbox,
    Usage,
    Workspace,
)
from tcai.delivery.outbox import deliver_due
from tcai.errors import Forbidden, NotFound
from tcai.records.tables import WORKSPACE_TABLES
from tests.conftest import provision
from tests.helpers import ALLOWED, CHAT_PATH, CONFIG_PATH, make_settings, rows, set_bot, token_for

CLIENT, BOT = "fade-factory", "fade-factory_main"


def doc(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def refused(result: Any, code: int, *words: str) -> None:
    """One `error: …` line on stderr, the exit code, no traceback, nothing on stdout."""
    assert result.exit_code == code, result.output
    assert result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
    for word in words:
        assert word in result.stderr, result.stderr


def audits(database: Any, action: str) -> list[AuditLog]:
    return rows(database, AuditLog, AuditLog.action == action)


def workspace(database: Any, slug: str = CLIENT) -> Workspace:
    return rows(database, Workspace, Workspace.slug == slug)[0]


def bot(database: Any, bot_id: str = BOT) -> Bot:
    return rows(database, Bot, Bot.bot_id == bot_id)[0]


def second_bot(database: Any, bot_id: str = "fade-factory_es") -> None:
    """A second bot in the client's workspace: a copy of the first (no command adds one)."""
    engine = database.engine()
    try:
        with Session(engine) as session:
            first = session.exec(select(Bot).where(Bot.bot_id == BOT)).one()
            session.add(
                Bot(
                    bot_id=bot_id,
                    workspace_id=first.workspace_id,
                    template_id=first.template_id,
                    name=first.name,
                    config=first.config,
                    allowed_origins=first.allowed_origins,
                )
            )
            session.commit()
    finally:
        engine.dispose()


# ---- show ------------------------------------------------------------------------------


def test_show_reports_facts_plan_quotas_usage_and_bots(cli, barber) -> None:
    shown = doc(cli("clients", "show", CLIENT, "--json"))
    assert shown["client_id"] == CLIENT and shown["status"] == "active"
    assert (shown["plan"], shown["quotas"]) == ("free", {"messages": 100, "leads": 10})
    assert shown["contact_phone"] == "+17725550100"
    assert shown["usage"]["month"] == datetime.now(UTC).strftime("%Y-%m")
    assert shown["suspension"] is None
    assert [b["bot_id"] for b in shown["bots"]] == [BOT]
    assert shown["bots"][0]["business"]["phone"] == "+17725550100"
    assert shown["counts"] == {"leads": 0, "conversations": 0, "pending_deliveries": 0}
    human = cli("clients", "show", CLIENT)
    assert human.exit_code == 0 and "0 of 100" in human.stdout and BOT in human.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["show", "no-such-client"],
        ["update", "no-such-client", "--phone", "772-555-0199"],
        ["suspend", "no-such-client", "--reason", "unpaid"],
        ["resume", "no-such-client"],
        ["plan", "no-such-client", "pro"],
        ["delete", "no-such-client", "--yes"],
    ],
)
def test_an_unknown_client_is_named(cli, barber, args) -> None:
    refused(cli("clients", *args, "--json"), 1, "no client 'no-such-client'", "clients list")
    assert not list(Path.cwd().glob("tcai-client-*"))  # no export for what does not exist


# ---- update ----------------------------------------------------------------------------


async def test_update_changes_the_workspace_and_every_bot_and_the_engine_answers_it(
    cli, facts_chat, barber
) -> None:
    second_bot(facts_chat.database)
    before = await facts_chat.say("what's your phone number?")
    assert "555-0100" in before.reply
    updated = doc(
        cli(
            "clients", "update", CLIENT, "--phone", "(772) 555-0199", "--email",
            "Hello@FadeFactory.com", "--website", "https://fadefactory.example.org",
            "--timezone", "America/Chicago", "--name", "Fade Factory Uptown", "--json",
        )
    )  # fmt: skip
    assert updated["changed"] is True
    assert updated["facts"]["phone"] == "+17725550199"
    assert updated["facts"]["email"] == "hello@fadefactory.com"
    assert {b["bot_id"] for b in updated["bots"]} == {BOT, "fade-factory_es"}
    assert all(b["config_version"] == 2 for b in updated["bots"])
    ws = workspace(facts_chat.database)
    assert (ws.name, ws.contact_phone, ws.contact_email, ws.timezone) == (
        "Fade Factory Uptown",
        "+17725550199",
        "hello@fadefactory.com",
        "America/Chicago",
    )
    main = bot(facts_chat.database)
    assert main.name == "Fade Factory Uptown"
    assert main.config["business"]["timezone"] == "America/Chicago"
    after = await facts_chat.say("what's your phone number?")
    assert "555-0199" in after.reply and "555-0100" not in after.reply
    [client_audit] = audits(facts_chat.database, "client.update")
    assert client_audit.actor == os_actor() and client_audit.after["phone"] == "+17725550199"
    assert len(audits(facts_chat.database, "bot.update")) == 2
    again = doc(cli("clients", "update", CLIENT, "--phone", "772-555-0199", "--json"))
    assert again["changed"] is False and bot(facts_chat.database).config_version == 2


@pytest.mark.parametrize(
    ("flags", "code", "words"),
    [
        (["--phone", "not a phone"], 1, ["--phone:", "not a valid phone number"]),
        (["--email", "nobody@"], 1, ["--email:"]),
        (["--website", "fadefactory"], 1, ["--website:"]),
        (["--timezone", "Mars/Olympus"], 1, ["--timezone:", "IANA"]),
        (["--name", "  "], 1, ["--name:"]),
        ([], 2, ["nothing to change", "--phone"]),
    ],
)
def test_update_refuses_bad_facts_and_changes_nothing(cli, barber, seeded, flags, code, words):
    # One good fact beside the bad one: it must not be written either.
    good = ["--address", "9 Elm St"] if flags else []
    refused(cli("clients", "update", CLIENT, *good, *flags), code, *words)
    assert bot(seeded).config_version == 1
    assert bot(seeded).config["business"]["address"] is None
    assert audits(seeded, "client.update") == []


def test_update_clears_a_fact_with_an_empty_value(cli, barber, seeded) -> None:
    cleared = doc(cli("clients", "update", CLIENT, "--phone", "", "--json"))
    assert cleared["facts"] == {"phone": None}
    assert workspace(seeded).contact_phone is None
    assert bot(seeded).config["business"]["phone"] is None


# ---- plan ------------------------------------------------------------------------------


def test_the_plans_are_one_list_the_schema_allows() -> None:
    assert tuple(load_rules().plans) == WORKSPACE_PLANS


async def test_a_new_plan_lifts_the_quota_the_engine_applies(cli, facts_chat, barber) -> None:
    ws = workspace(facts_chat.database)
    engine = facts_chat.database.engine()
    with Session(engine) as session:
        month = datetime.now(UTC).strftime("%Y-%m")
        session.add(Usage(workspace_id=ws.id, month=month, messages=100, leads=0))
        session.commit()
    engine.dispose()
    limited = await facts_chat.say("what are your hours?")
    assert (limited.http_status, limited.source) == (429, "limit")

    changed = doc(cli("clients", "plan", CLIENT, "starter", "--json"))
    assert changed == {
        "client_id": CLIENT,
        "plan": "starter",
        "previous_plan": "free",
        "changed": True,
        "quotas": {"messages": 1000, "leads": 50},
    }
    answered = await facts_chat.say("what are your hours?")
    assert answered.http_status == 200 and answered.source != "limit"
    [entry] = audits(facts_chat.database, "client.plan")
    assert entry.actor == os_actor()
    assert (entry.before["plan"], entry.after["plan"]) == ("free", "starter")
    same = doc(cli("clients", "plan", CLIENT, "starter", "--json"))
    assert same["changed"] is False and len(audits(facts_chat.database, "client.plan")) == 1


def test_an_unknown_plan_exits_2_listing_the_plans(cli, barber, seeded) -> None:
    result = cli("clients", "plan", CLIENT, "platinum")
    refused(result, 2, "unknown plan 'platinum'")
    for plan in WORKSPACE_PLANS:
        assert plan in result.stderr
    assert "100 messages" in result.stderr and "unlimited" in result.stderr
    assert workspace(seeded).plan == "free"


# ---- suspend and resume ----------------------------------------------------------------


async def test_suspend_stops_every_bot_for_visitors_and_resume_brings_them_back(
    cli, facts_chat, barber
) -> None:
    second_bot(facts_chat.database)
    warm = await facts_chat.say("what are your hours?")  # the bot is now in the engine's cache
    assert warm.http_status == 200

    suspended = doc(cli("clients", "suspend", CLIENT, "--reason", "invoice unpaid", "--json"))
    assert suspended["status"] == "suspended" and suspended["previous_status"] == "active"
    assert suspended["paused_bots"] == ["fade-factory_es", BOT]
    for bot_id in (BOT, "fade-factory_es"):
        stored = bot(facts_chat.database, bot_id)
        assert stored.status == "paused"
        assert stored.paused_reason == "client suspended: invoice unpaid"
        assert stored.paused_by == os_actor()
    with pytest.raises(Forbidden, match="suspended"):
        await facts_chat.say("what are your hours?")
    with pytest.raises(Forbidden):
        await facts_chat.say("hello", bot="fade-factory_es")
    shown = doc(cli("clients", "show", CLIENT, "--json"))
    assert shown["suspension"]["reason"] == "invoice unpaid"
    assert shown["suspension"]["by"] == os_actor()
    [entry] = audits(facts_chat.database, "client.suspend")
    assert (
        entry.reason == "invoice unpaid" and entry.after["paused_bots"] == suspended["paused_bots"]
    )

    resumed = doc(cli("clients", "resume", CLIENT, "--json"))
    assert resumed == {
        "client_id": CLIENT,
        "status": "active",
        "resumed_bots": ["fade-factory_es", BOT],
        "still_paused": [],
    }
    back = await facts_chat.say("what are your hours?")
    assert back.http_status == 200 and back.source != "paused"
    assert bot(facts_chat.database).paused_reason is None
    assert len(audits(facts_chat.database, "client.resume")) == 1


async def test_resume_keeps_a_bot_the_kill_switch_paused_before(cli, facts_chat, barber) -> None:
    engine = facts_chat.database.engine()
    set_bot_status(engine, BOT, enabled=False, reason="owner asked for a break", actor="ops")
    engine.dispose()
    suspended = doc(cli("clients", "suspend", CLIENT, "--reason", "invoice unpaid", "--json"))
    assert suspended["paused_bots"] == []
    assert suspended["already_stopped"][0]["paused_reason"] == "owner asked for a break"
    resumed = doc(cli("clients", "resume", CLIENT, "--json"))
    assert resumed["resumed_bots"] == []
    assert resumed["still_paused"] == [{"bot_id": BOT, "paused_reason": "owner asked for a break"}]
    reply = await facts_chat.say("hello?")
    assert (reply.http_status, reply.status) == (503, "paused")  # the polite note, not a 403


async def test_the_daemon_answers_a_suspended_client_403_in_the_error_shape(
    cli, seeded, aiohttp_client, tmp_path
) -> None:
    provision(seeded, allowed_origins=[ALLOWED])
    engine = seeded.engine()
    app = create_app(make_settings(log_dir=tmp_path / "logs"), engine=engine)
    client = await aiohttp_client(app)
    app[DIRECTORY].check_interval = 0.0  # every request checks the change signal
    headers = {"Origin": ALLOWED, "Authorization": f"Bearer {await token_for(client)}"}
    before = await client.post(CHAT_PATH, json={"message": "are you open today?"}, headers=headers)
    assert before.status == 200, await before.text()

    doc(cli("clients", "suspend", CLIENT, "--reason", "invoice unpaid", "--json"))
    chat = await client.post(CHAT_PATH, json={"message": "are you open today?"}, headers=headers)
    config = await client.get(CONFIG_PATH, headers={"Origin": ALLOWED})
    for response in (chat, config):
        assert response.status == 403
        body = await response.json()
        assert set(body) == {"error", "request_id"} and body["error"]["code"] == "forbidden"
        assert "invoice" not in body["error"]["message"]  # the reason is for operators

    doc(cli("clients", "resume", CLIENT, "--json"))
    after = await client.post(CHAT_PATH, json={"message": "are you open today?"}, headers=headers)
    assert after.status == 200, await after.text()
    engine.dispose()


def test_suspend_needs_a_reason_and_twice_is_refused(cli, barber, seeded) -> None:
    refused(cli("clients", "suspend", CLIENT), 2, "--reason")
    refused(cli("clients", "suspend", CLIENT, "--reason", "   "), 2, "--reason")
    assert workspace(seeded).status == "active"
    doc(cli("clients", "suspend", CLIENT, "--reason", "first", "--json"))
    refused(cli("clients", "suspend", CLIENT, "--reason", "second"), 1, "already suspended")
    assert bot(seeded).paused_reason == "client suspended: first"
    assert len(audits(seeded, "client.suspend")) == 1


def test_resume_of_an_active_client_is_refused(cli, barber, seeded) -> None:
    refused(cli("clients", "resume", CLIENT), 1, "is active, not suspended")
    assert audits(seeded, "client.resume") == []


def test_demo_safe_mode_protects_a_demo_client(cli, barber, seeded, monkeypatch) -> None:
    engine = seeded.engine()
    with Session(engine) as session:
        ws = session.exec(select(Workspace)).one()
        ws.status = "demo"
        session.add(ws)
        session.commit()
    engine.dispose()
    monkeypatch.setenv("DEMO_SAFE_MODE", "true")
    refused(cli("clients", "suspend", CLIENT, "--reason", "x"), 1, "DEMO_SAFE_MODE")
    refused(cli("clients", "delete", CLIENT, "--yes", "--force"), 1, "DEMO_SAFE_MODE")
    assert workspace(seeded).status == "demo"
    assert not list(Path.cwd().glob("tcai-client-*"))


# ---- delete ----------------------------------------------------------------------------


async def _a_client_with_history(facts_chat: Any) -> None:
    """A lead, a conversation with messages, and a webhook delivery still pending."""
    set_bot(
        facts_chat.database,
        "webhook_url=https://hooks.fadefactory.example.org/tcai",
        f"webhook_secret={new_secret()}",
    )
    reply = await facts_chat.say("I'm Ana, 772-555-0142, please call me about a fade")
    assert reply.lead_captured


def _owned_rows(database: Any, workspace_id: int) -> dict[str, int]:
    """Rows left of the workspace, per registered table."""
    engine = database.engine()
    try:
        with Session(engine) as session:
            conversations = select(Conversation.id).where(Conversation.workspace_id == workspace_id)
            outbox = select(Outbox.id).where(Outbox.workspace_id == workspace_id)
            left = {}
            for table in WORKSPACE_TABLES:
                model: Any = table.model
                if table.owner == "workspace":
                    where = col(model.workspace_id) == workspace_id
                elif table.owner == "conversation":
                    where = col(model.conversation_id).in_(conversations)
                elif table.owner == "outbox":
                    where = col(model.outbox_id).in_(outbox)
                else:
                    continue
                left[table.name] = len(session.exec(select(model).where(where)).all())
            return left
    finally:
        engine.dispose()


async def test_delete_exports_first_then_removes_everything_the_client_owns(
    cli, facts_chat, barber
) -> None:
    provision(facts_chat.database, slug="other-shop", name="Other Shop")
    await _a_client_with_history(facts_chat)
    ws_id = workspace(facts_chat.database).id
    lead_id = rows(facts_chat.database, Lead)[0].id
    messages = len(rows(facts_chat.database, Message))
    doc(cli("clients", "suspend", CLIENT, "--reason", "contract ended", "--json"))

    export = Path.cwd() / "fade-export.json"
    deleted = doc(cli("clients", "delete", CLIENT, "--yes", "--export", str(export), "--json"))
    assert deleted["deleted"] is True and deleted["forced"] is False
    assert deleted["export"]["path"] == str(export)
    assert oct(os.stat(export).st_mode)[-3:] == "600"
    data = export.read_bytes()
    assert deleted["export"]["bytes"] == len(data)
    document = json.loads(data)
    assert document["kind"] == "client" and document["workspace"] == CLIENT
    assert set(document) >= {"generated_at", "scope", "counts", "total", "workspaces", "records"}
    assert [lead["id"] for lead in document["records"]["lead"]] == [lead_id]
    assert len(document["records"]["message"]) == messages >= 2
    assert document["records"]["bot"][0]["bot_id"] == BOT
    assert any(a["action"] == "client.suspend" for a in document["records"]["audit_log"])
    assert document["counts"] == deleted["counts"]

    assert all(count == 0 for count in _owned_rows(facts_chat.database, ws_id).values())
    assert rows(facts_chat.database, Workspace, Workspace.id == ws_id) == []
    assert [w.slug for w in rows(facts_chat.database, Workspace)] == ["other-shop"]
    assert len(rows(facts_chat.database, Bot)) == 1
    [entry] = audits(facts_chat.database, "client.delete")
    assert entry.actor == os_actor() and entry.target == CLIENT and entry.workspace_id is None
    assert entry.after["export"]["sha256"] == deleted["export"]["sha256"]
    with pytest.raises(NotFound):  # the engine's cached bot is gone too
        await facts_chat.say("hello")


async def test_delete_drops_pending_deliveries_and_keeps_them_in_the_export(
    cli, facts_chat, barber, aiohttp_server
) -> None:
    seen: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        seen.append(await request.read())
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = await aiohttp_server(app, host="127.0.0.1")
    await _a_client_with_history(facts_chat)
    set_bot(facts_chat.database, patch={"webhook_url": str(server.make_url("/hook"))})
    await facts_chat.say("I'm Bea, 772-555-0177, I'd like a beard trim")
    pending = rows(facts_chat.database, Outbox, Outbox.status == "pending")
    assert len(pending) >= 2

    result = cli("clients", "delete", CLIENT, "--yes", "--force", "--json")
    deleted = doc(result)
    assert deleted["pending_deliveries_dropped"] == len(pending)
    assert sorted(deleted["dropped_event_ids"]) == sorted(o.event_id for o in pending)
    assert f"{len(pending)} pending delivery(ies) dropped" in result.stderr
    export = json.loads(Path(deleted["export"]["path"]).read_text())
    exported = {o["event_id"]: o for o in export["records"]["outbox"]}
    assert all(exported[o.event_id]["status"] == "pending" for o in pending)
    assert all(exported[o.event_id]["payload"] == o.payload for o in pending)

    settings = load_settings().model_copy(
        update={"webhook_allow_private": True, "widget_secret": SecretStr(new_secret())}
    )
    run = await deliver_due(facts_chat.engine, settings)  # what a running worker does next
    assert run.claimed == 0 and seen == []
    assert rows(facts_chat.database, Outbox) == []


async def test_delete_refuses_live_bots_without_force(cli, facts_chat, barber) -> None:
    await _a_client_with_history(facts_chat)
    result = cli("clients", "delete", CLIENT, "--yes")
    refused(result, 1, f"live bot(s): {BOT}", "clients suspend", "--force")
    assert not list(Path.cwd().glob("tcai-client-*"))
    assert len(rows(facts_chat.database, Lead)) == 1 and workspace(facts_chat.database)
    forced = doc(cli("clients", "delete", CLIENT, "--yes", "--force", "--json"))
    assert forced["forced"] is True and forced["live_bots"] == [BOT]
    assert Path(forced["export"]["path"]).name.startswith(f"tcai-client-{CLIENT}-")
    assert rows(facts_chat.database, Lead) == []


def test_delete_without_yes_or_onto_an_existing_export_changes_nothing(cli, barber, seeded) -> None:
    refused(cli("clients", "delete", CLIENT), 2, "--yes")
    refused(cli("clients", "delete", CLIENT, "--force", "--json"), 2, "--yes")
    taken = Path.cwd() / "taken.json"
    taken.write_text("keep me")
    refused(cli("clients", "delete", CLIENT, "--yes", "--export", str(taken)), 2, "already exists")
    missing = Path.cwd() / "no-such-folder" / "x.json"
    refused(cli("clients", "delete", CLIENT, "--yes", "--export", str(missing)), 2, "folder")
    assert taken.read_text() == "keep me"
    assert workspace(seeded).status == "active" and bot(seeded)
    assert audits(seeded, "client.delete") == []


# ---- a lead's status -------------------------------------------------------------------


async def test_lead_status_takes_won_for_converted_and_is_audited(cli, facts_chat, barber):
    reply = await facts_chat.say("I'm Ana, 772-555-0142, please call me back")
    assert reply.lead_captured
    lead = rows(facts_chat.database, Lead)[0]
    won = doc(cli("leads", "status", str(lead.id), "won", "--json"))
    assert (won["lead_id"], won["client_id"]) == (lead.id, CLIENT)
    assert (won["previous_status"], won["status"], won["changed"]) == ("new", "converted", True)
    assert rows(facts_chat.database, Lead)[0].status == "converted"
    [entry] = audits(facts_chat.database, "lead.status")
    assert entry.actor == os_actor() and entry.after == {"status": "converted"}
    for word, stored in [("contacted", "contacted"), ("qualified", "qualified"), ("LOST", "lost")]:
        moved = doc(cli("leads", "status", str(lead.id), word, "-w", CLIENT, "--json"))
        assert moved["status"] == stored
    same = cli("leads", "status", str(lead.id), "lost")
    assert same.exit_code == 0 and "already lost" in same.stdout
    assert len(audits(facts_chat.database, "lead.status")) == 4


async def test_lead_status_refuses_bad_input(cli, facts_chat, barber) -> None:
    provision(facts_chat.database, slug="other-shop", name="Other Shop")
    await facts_chat.say("I'm Ana, 772-555-0142, please call me back")
    lead = rows(facts_chat.database, Lead)[0]
    refused(cli("leads", "status", str(lead.id), "maybe"), 2, "new, contacted, won or lost")
    refused(cli("leads", "status", "abc", "won"), 2, "LEAD must be a lead id")
    refused(cli("leads", "status", "0", "won"), 2, "LEAD must be a lead id")
    refused(cli("leads", "status", str(2**40), "won"), 2, "LEAD must be a lead id")
    refused(cli("leads", "status", str(lead.id + 1000), "won", "--json"), 1, "no lead")
    # A lead that belongs to no such client, or to another one.
    refused(cli("leads", "status", str(lead.id), "won", "-w", "no-such-client"), 1, "no client")
    refused(cli("leads", "status", str(lead.id), "won", "-w", "other-shop"), 1, "no lead")
    assert rows(facts_chat.database, Lead)[0].status == "new"
    assert audits(facts_chat.database, "lead.status") == []


def test_the_new_commands_show_their_options(cli) -> None:
    for args, words in [
        (["clients", "--help"], ["show", "update", "suspend", "resume", "delete", "plan"]),
        (["clients", "delete", "--help"], ["--yes", "--force", "--export", "--json"]),
        (["leads", "status", "--help"], ["LEAD", "STATUS", "--json"]),
    ]:
        result = cli(*args)
        assert result.exit_code == 0, result.output
        for word in words:
            assert word in result.stdout, (args, word)
