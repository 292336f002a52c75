"""`tcai bots check`: blockers a visitor would hit, warnings an operator wants, exit codes."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import Session, select

from tcai.bots.config import BotConfig, BusinessFacts
from tcai.chat.facts import FactsAnswer, FactsBook
from tcai.db.models import Bot, BotTemplate, Usage, Workspace
from tcai.quality.golive import missing_opening_times
from tcai.templates.files import load_template_files
from tests.conftest import provision

READY = "sunset-diner_main"
WEEK = {"mon": "09:00-17:00", "tue": "09:00-17:00", "wed": "09:00-17:00",
        "thu": "09:00-17:00", "fri": "09:00-21:30", "sat": "10:00-15:00", "sun": "closed"}  # fmt: skip


def _hours() -> list[str]:
    return [f"hours.{day}={span}" for day, span in WEEK.items()]


@pytest.fixture
def ready(cli, seeded) -> Any:
    """A restaurant with everything a go-live needs: no blocker, no warning."""
    result = cli("clients", "create", "--template", "restaurant", "--slug", "sunset-diner",
                 "--name", "Sunset Diner", "--phone", "772-555-0102",
                 "--email", "owner@sunsetdiner.net", "--address", "88 Ocean Blvd, Stuart, FL",
                 "--website", "https://sunsetdiner.net",
                 "--booking-url", "https://www.opentable.com/r/sunset-diner",
                 "--allowed-origin", "https://sunsetdiner.net", "--plan", "pro")  # fmt: skip
    assert result.exit_code == 0, result.output
    result = cli("bots", "set", READY, *_hours(), "webhook_url=https://hooks.sunsetdiner.net/tcai",
                 f"webhook_secret={secrets.token_urlsafe(24)}")  # fmt: skip
    assert result.exit_code == 0, result.output
    return seeded


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch) -> None:
    """Room for the report table, so a code is never folded across two lines."""
    monkeypatch.setenv("COLUMNS", "300")


def _check(cli, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli("bots", "check", *args, "--json")
    return result.exit_code, json.loads(result.stdout)


def _edit(database, bot_id: str, change: Callable[[Session, Bot, Workspace], None]) -> None:
    """Change stored rows behind the CLI's back (old configs, other tools, a bad seed)."""
    engine = database.engine()
    try:
        with Session(engine) as session:
            bot = session.exec(select(Bot).where(Bot.bot_id == bot_id)).one()
            workspace = session.get(Workspace, bot.workspace_id)
            assert workspace is not None
            change(session, bot, workspace)
            session.commit()
    finally:
        engine.dispose()


def _config(path: tuple[str, ...], value: Any) -> Callable[[Session, Bot, Workspace], None]:
    def change(session: Session, bot: Bot, _ws: Workspace) -> None:
        document = json.loads(json.dumps(bot.config))
        node = document
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
        bot.config = document
        session.add(bot)

    return change


def _codes(findings: list[dict[str, str]]) -> set[str]:
    return {f["code"] for f in findings}


def test_a_ready_bot_passes(cli, ready) -> None:
    code, report = _check(cli, READY)
    assert code == 0
    assert report["ok"] is True
    assert (report["total"], report["passed"], report["warnings"], report["failed"]) == (1, 1, 0, 0)
    assert report["items"] == [{"name": READY, "status": "pass", "message": "ready to go live"}]
    bot = report["bots"][0]
    assert (bot["bot_id"], bot["client_id"], bot["ok"], bot["live"]) == (
        READY, "sunset-diner", True, True,
    )  # fmt: skip
    assert bot["blockers"] == [] and bot["warnings"] == []
    assert report["llm"] is None, "no key: facts mode, nothing to probe"
    human = cli("bots", "check", READY)
    assert human.exit_code == 0
    assert human.stdout.strip() == "✓ ALL 1 BOT(S) READY TO GO LIVE"


@pytest.mark.parametrize(
    ("assignments", "blocker"),
    [
        (["phone="], "no_phone"),
        (["address="], "no_address"),
        (["allowed_origins="], "no_allowed_origins"),
        (["booking_url="], "no_booking_link"),
        ([f"hours.{day}=closed" for day in WEEK], "no_open_hours"),
    ],
)
def test_each_blocker_set_through_the_cli(cli, ready, assignments, blocker) -> None:
    result = cli("bots", "set", READY, *assignments)
    assert result.exit_code == 0, result.output
    code, report = _check(cli, READY)
    assert code == 1
    assert report["ok"] is False and report["failed"] == 1 and report["passed"] == 0
    assert _codes(report["bots"][0]["blockers"]) == {blocker}
    finding = report["bots"][0]["blockers"][0]
    assert finding["message"] and finding["fix"]


@pytest.mark.parametrize(
    ("path", "value", "blocker", "in_message"),
    [
        (("business", "hours"), {}, "no_hours", "no opening hours"),
        # Stored before the provider rule, or written by another tool: still caught.
        (("booking", "url"), "https://www.opentable.com.evil.example/r/x", "booking_link_invalid",
         "which OpenTable does not use"),
        (("booking", "url"), "https://www.\u043epentable.com/r/x", "booking_link_invalid",
         "look-alike"),
        (("booking", "url"), "https://www.opentable.com/r/YOUR_BUSINESS", "booking_link_placeholder",
         "placeholder"),
        (("booking", "url"), "http://www.opentable.com/r/sunset", "booking_link_invalid", "https"),
        (("booking", "provider"), "Resy", "booking_link_invalid", "Resy links must be on resy.com"),
        (("booking", "provider"), "Acme Pay", "booking_provider_unknown", "Acme Pay"),
        (("booking", "service_urls"), {"Brunch": "https://www.opentable.com:8443/r/x"},
         "booking_link_invalid", "port 8443"),
    ],
)  # fmt: skip
def test_each_blocker_in_a_stored_config(cli, ready, path, value, blocker, in_message) -> None:
    _edit(ready, READY, _config(path, value))
    code, report = _check(cli, READY)
    assert code == 1
    blockers = report["bots"][0]["blockers"]
    assert _codes(blockers) == {blocker}, blockers
    assert in_message in blockers[0]["message"]


def test_a_suspended_workspace_blocks(cli, ready) -> None:
    def suspend(session: Session, _bot: Bot, ws: Workspace) -> None:
        ws.status = "suspended"
        session.add(ws)

    _edit(ready, READY, suspend)
    code, report = _check(cli, READY)
    assert code == 1
    assert "workspace_suspended" in _codes(report["bots"][0]["blockers"])


@pytest.mark.parametrize(
    ("key", "change", "blockers"),
    [
        ("sober_living", _config(("template", "crisis"), None), {"missing_crisis_rules"}),
        (
            "sober_living",
            _config(("template", "crisis", "response"), "Please talk to someone you trust."),
            {"crisis_helplines_missing"},
        ),
        # Dental and med spa carry compliance rules and no crisis block of their own:
        # without compliance they carry neither.
        (
            "dental",
            _config(("template", "compliance"), None),
            {"missing_compliance_rules", "missing_crisis_rules"},
        ),
        (
            "med_spa",
            _config(("template", "compliance"), None),
            {"missing_compliance_rules", "missing_crisis_rules"},
        ),
        ("law_firm", _config(("template", "compliance"), None), {"missing_compliance_rules"}),
    ],
)
def test_sensitive_verticals_need_their_rules(cli, seeded, key, change, blockers) -> None:
    bot_id = provision(seeded, template=key, slug="care-home")
    rules = {"missing_crisis_rules", "missing_compliance_rules", "crisis_helplines_missing"}
    assert not rules & _codes(_check(cli, bot_id)[1]["bots"][0]["blockers"])
    _edit(seeded, bot_id, change)
    code, report = _check(cli, bot_id)
    assert code == 1
    assert rules & _codes(report["bots"][0]["blockers"]) == blockers


def _no_times(self: Any, message: str, **kw: Any) -> Any:
    return FactsAnswer("We'd love to see you! Drop by any time we're open.", True)


def _broken(self: Any, message: str, **kw: Any) -> Any:
    raise KeyError("hours")


@pytest.mark.parametrize(
    ("answer", "in_message"),
    [(_no_times, "09:00, 10:00 missing"), (_broken, "failed: KeyError")],
)
def test_a_facts_answer_without_the_hours_blocks(cli, ready, monkeypatch, answer, in_message):
    monkeypatch.setattr(FactsBook, "answer", answer)
    code, report = _check(cli, READY)
    assert code == 1
    blockers = report["bots"][0]["blockers"]
    assert _codes(blockers) == {"hours_answer"}
    assert in_message in blockers[0]["message"]


@pytest.mark.parametrize(
    ("key", "needs_address"),
    [(t.key, t.key in {"barber", "salon", "nails", "restaurant", "gym", "auto", "dental",
                       "med_spa", "tattoo", "pet_grooming", "hotel"})
     for t in load_template_files()],
)  # fmt: skip
def test_walk_in_businesses_need_an_address(cli, seeded, key, needs_address) -> None:
    bot_id = provision(seeded, template=key, slug="no-address")
    _, report = _check(cli, bot_id)
    assert ("no_address" in _codes(report["bots"][0]["blockers"])) is needs_address


@pytest.mark.parametrize(
    ("assignments", "warning"),
    [
        (["email="], "no_email"),
        (["website="], "no_website"),
        (["webhook_url="], "no_notifications"),
        (["webhook_secret="], "webhook_unsigned"),
        (["notify_emails=owner@sunsetdiner.net"], "email_not_sent"),
        (["allowed_origins=http://sunsetdiner.net"], "insecure_origin"),
        (["address=Serving the Treasure Coast"], "address_not_street"),
    ],
)
def test_each_warning_leaves_the_bot_ready(cli, ready, assignments, warning) -> None:
    result = cli("bots", "set", READY, *assignments)
    assert result.exit_code == 0, result.output
    code, report = _check(cli, READY)
    assert code == 0, "a warning never blocks"
    assert report["ok"] is True
    assert (report["passed"], report["warnings"], report["failed"]) == (0, 1, 0), (
        "a warning never counts as passed"
    )
    assert report["items"][0]["status"] == "warn"
    assert _codes(report["bots"][0]["warnings"]) == {warning}
    human = cli("bots", "check", READY)
    assert human.exit_code == 0
    assert human.stdout.strip() == "✓ ALL 1 BOT(S) READY TO GO LIVE with 1 warning(s)"
    assert warning in human.stderr


def test_plan_template_and_quota_warnings(cli, ready) -> None:
    def free_and_busy(session: Session, bot: Bot, ws: Workspace) -> None:
        ws.plan = "free"
        session.add(ws)
        month = datetime.now(UTC).strftime("%Y-%m")
        session.add(Usage(workspace_id=ws.id or 0, month=month, messages=95, leads=2))
        row = session.exec(
            select(BotTemplate).where(BotTemplate.template_id == bot.template_id)
        ).one()
        row.version = "99.0.0"
        session.add(row)

    _edit(ready, READY, free_and_busy)
    code, report = _check(cli, READY)
    assert code == 0
    warnings = report["bots"][0]["warnings"]
    assert _codes(warnings) == {"plan_free", "quota_near", "template_outdated"}
    assert any("95 of 100 messages" in w["message"] for w in warnings)


def test_origins_block_only_a_live_bot(cli, ready) -> None:
    assert cli("bots", "set", READY, "allowed_origins=").exit_code == 0
    assert _check(cli, READY)[0] == 1
    assert cli("bot", "disable", READY, "--reason", "not launched yet").exit_code == 0
    code, report = _check(cli, READY)
    assert code == 0, "a paused bot is checked, but missing origins only warn"
    bot = report["bots"][0]
    assert bot["live"] is False and bot["status"] == "paused"
    assert _codes(bot["warnings"]) == {"no_allowed_origins", "not_live"}
    assert (
        "not launched yet" in next(w for w in bot["warnings"] if w["code"] == "not_live")["message"]
    )


def test_global_widget_origins_count(cli, ready, monkeypatch) -> None:
    assert cli("bots", "set", READY, "allowed_origins=").exit_code == 0
    monkeypatch.setenv("WIDGET_ALLOWED_ORIGINS", "https://sunsetdiner.net")
    assert _check(cli, READY)[0] == 0


def test_all_bots_and_the_report_shape(cli, ready) -> None:
    provision(ready, template="barber", slug="fade-factory")  # no hours, no link, no address
    code, report = _check(cli, "--all")
    assert code == 1
    assert [i["name"] for i in report["items"]] == ["fade-factory_main", READY]
    assert report["total"] == report["passed"] + report["warnings"] + report["failed"] == 2
    assert (report["passed"], report["failed"]) == (1, 1)
    barber = report["bots"][0]
    assert {"no_hours", "no_address", "no_booking_link", "no_allowed_origins"} <= _codes(
        barber["blockers"]
    )
    for finding in barber["blockers"] + barber["warnings"]:
        assert set(finding) == {"code", "message", "fix"} and all(finding.values())
    human = cli("bots", "check", "--all")
    assert human.exit_code == 1
    assert human.stdout.startswith("✗ 1 OF 2 BOT(S) NOT READY:")
    assert "no_booking_link" in human.stderr and "fade-factory_main" in human.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ((), 2, "name one bot, or give --all"),
        (("fade-factory_main", "--all"), 2, "name one bot, or give --all"),
        (("ghost",), 1, "no bot 'ghost'"),
    ],
)
def test_usage_and_unknown_bots(cli, seeded, args, code, message) -> None:
    result = cli("bots", "check", *args)
    assert result.exit_code == code, result.output
    assert message in result.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_failing_llm_key_blocks_every_bot(cli, ready, monkeypatch) -> None:
    key = "sk-" + secrets.token_hex(16)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{_closed_port()}/v1")
    result = cli("bots", "check", "--all", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["llm"]["kind"] == "connection_refused"
    assert _codes(report["bots"][0]["blockers"]) == {"llm_failed"}
    assert key not in result.output


async def test_a_working_llm_key_passes(cli, ready, stub_llm, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + secrets.token_hex(16))
    monkeypatch.setenv("OPENAI_BASE_URL", stub_llm.base_url)
    # The CLI runs its own event loop; the stub answers from this one.
    result = await asyncio.to_thread(cli, "bots", "check", READY, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["llm"]["ok"] is True and report["bots"][0]["blockers"] == []
    assert len(stub_llm.requests) == 1


# ---- the hours answer, in the phrasings a facts answer may use ---------------------------

SATURDAY = datetime(2025, 6, 7, 15, 0, tzinfo=UTC)  # 11:00 in New York
SATURDAY_NIGHT = datetime(2025, 6, 8, 1, 0, tzinfo=UTC)  # 21:00 on Saturday in New York
SUNDAY = datetime(2025, 6, 8, 15, 0, tzinfo=UTC)


def _week_config() -> BotConfig:
    template = next(t for t in load_template_files() if t.key == "restaurant")
    hours = {day: (() if span == "closed" else (span,)) for day, span in WEEK.items()}
    return BotConfig(
        template=template,
        business=BusinessFacts(name="Sunset Diner", phone="+17725550102", hours=hours),
    )


@pytest.mark.parametrize(
    ("answer", "now", "missing"),
    [
        ("Our hours are: Mon 09:00-17:00; Sat 10:00-15:00; Sun closed.", SATURDAY, []),
        ("Monday–Thursday 9 am – 5 pm, Friday 9 am – 9:30 pm, Saturday 10 am – 3 pm.",
         SATURDAY, []),
        ("We open at 9:00 a.m. on weekdays and 10AM on Saturdays.", SATURDAY, []),
        ("Weekdays 9–5, Saturdays 10–3.", SATURDAY, ["09:00", "10:00"]),
        ("Today we're open 10 am to 3 pm.", SATURDAY, []),
        ("Today we're open 9 am to 5 pm.", SATURDAY, ["10:00"]),
        ("We're closed today; tomorrow we open at 9 am.", SUNDAY, []),
        ("We're closed right now. We open again on Monday at 9 am.", SATURDAY, ["10:00"]),
        ("We're closed right now. We open again on Monday at 9 am.", SATURDAY_NIGHT, []),
        ("Please call us for today's hours.", SATURDAY, ["09:00", "10:00"]),
        ("We open at 9 pm and 10 pm.", SATURDAY, ["09:00", "10:00"]),
    ],
)  # fmt: skip
def test_the_hours_answer_check_reads_12_and_24_hour_times(answer, now, missing) -> None:
    assert missing_opening_times(answer, _week_config(), now) == missing
