"""`tcai doctor` against a real daemon (aiohttp on 127.0.0.1, the real app and database),
the stub LLM and a local webhook receiver: a healthy bot is all ok, and each planted
fault (wrong origin, paused bot, dead LLM endpoint, dead webhook, locked user) is found
with a fix line whose command, run as printed, mends it. Also the daemon's own log line
for a refused widget origin, at most once a minute per (bot, origin).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shlex
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tcai.access.auth import LoginFailed, login
from tcai.access.users import create_user
from tcai.config import load_settings, new_secret
from tcai.daemon.app import create_app
from tcai.daemon.keys import ORIGIN_REFUSALS
from tcai.db.models import Lead, Outbox
from tcai.quality.stub_llm import StubLLM
from tests.conftest import provision
from tests.helpers import ALLOWED, CHAT_PATH, CONFIG_PATH, rows, set_bot

BOT = "fade-factory_main"
EVIL = "https://evil.example"
LEAD_MESSAGE = "I'm Ana, 772-555-0142, please call me about a fade"
HEALTHY_CHECKS = [
    "bot",
    "workspace",
    "origin",
    "embed_script",
    "widget_config",
    "widget_frame",
    "daemon",
    "llm",
    "outbox",
    "leads",
    "refused_origins",
]


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: `fail` answers 500."""

    fail: bool = False
    seen: int = 0
    url: str = ""

    async def hook(self, request: web.Request) -> web.Response:
        await request.read()
        self.seen += 1
        return web.Response(status=500, text="down") if self.fail else web.json_response({})


@dataclass
class Site:
    """A provisioned bot behind a running daemon, and the CLI pointed at both."""

    database: Any
    base: str
    app: web.Application
    log_dir: Path
    stub: StubLLM
    receiver: Receiver
    cli: Any
    engine: Any = field(repr=False)

    async def doctor(self, *args: str) -> tuple[int, dict[str, Any]]:
        # The CLI runs its own event loop (the LLM probe) in a worker thread.
        result = await asyncio.to_thread(self.cli, "doctor", *args, "--url", self.base, "--json")
        assert result.stderr == "" or result.exit_code == 1, result.stderr
        return result.exit_code, json.loads(result.stdout)

    async def run_fix(self, fix: str) -> None:
        """Run a fix line's command exactly as printed (the part before any ' (')."""
        words = shlex.split(fix.split(" (")[0])
        assert words[0] == "tcai", fix
        result = await asyncio.to_thread(self.cli, *words[1:])
        assert result.exit_code == 0, result.output

    async def chat(self, message: str) -> int:
        async with aiohttp.ClientSession() as http:
            async with http.get(self.base + CONFIG_PATH, headers={"Origin": ALLOWED}) as got:
                assert got.status == 200, await got.text()
                token = (await got.json())["token"]
            headers = {"Origin": ALLOWED, "Authorization": f"Bearer {token}"}
            async with http.post(
                self.base + CHAT_PATH, json={"message": message}, headers=headers
            ) as answer:
                return answer.status

    async def get(self, path: str, origin: str) -> int:
        async with (
            aiohttp.ClientSession() as http,
            http.get(self.base + path, headers={"Origin": origin}) as answer,
        ):
            return answer.status

    async def outbox_settles(self, status: str) -> Outbox:
        """The lead's outbox row once the daemon's worker has brought it to `status`."""
        for _ in range(400):
            found = rows(self.database, Outbox, Outbox.status == status)
            if found:
                return found[0]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no outbox row became {status}: {rows(self.database, Outbox)}")


def by_check(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["check"]: f for f in report["findings"]}


@pytest.fixture
async def site(seeded, tmp_path, monkeypatch, cli, aiohttp_server) -> AsyncIterator[Site]:
    receiver = Receiver()
    hooks = web.Application()
    hooks.router.add_post("/hook", receiver.hook)
    hook_server = await aiohttp_server(hooks, host="127.0.0.1")
    receiver.url = str(hook_server.make_url("/hook"))
    provision(seeded, allowed_origins=[ALLOWED])
    set_bot(seeded, patch={"webhook_url": receiver.url, "webhook_secret": secrets.token_hex(16)})
    log_dir = tmp_path / "logs"
    async with StubLLM(reply="Happy to help!") as stub:
        for name, value in {
            "WIDGET_SECRET": new_secret(),
            "LOG_DIR": str(log_dir),
            "WEBHOOK_ALLOW_PRIVATE": "true",
            "OUTBOX_MAX_ATTEMPTS": "1",
            "OPENAI_API_KEY": "sk-test-" + secrets.token_hex(20),
            "OPENAI_BASE_URL": stub.base_url,
        }.items():
            monkeypatch.setenv(name, value)
        engine = seeded.engine()
        app = create_app(load_settings(), engine=engine)
        server = await aiohttp_server(app, host="127.0.0.1")
        yield Site(
            seeded,
            str(server.make_url("")).rstrip("/"),
            app,
            log_dir,
            stub,
            receiver,
            cli,
            engine,
        )
        await server.close()
        engine.dispose()


# ---- a healthy bot ---------------------------------------------------------------------------


async def test_a_healthy_bot_is_all_ok(site: Site) -> None:
    assert await site.chat(LEAD_MESSAGE) == 200
    delivered = await site.outbox_settles("delivered")
    assert site.receiver.seen == 1 and delivered.event_type == "lead.created"
    assert rows(site.database, Lead)

    code, report = await site.doctor(BOT)
    assert code == 0, report
    assert [f["check"] for f in report["findings"]] == HEALTHY_CHECKS
    assert {f["status"] for f in report["findings"]} == {"ok"}, report
    assert all(f["fix"] is None for f in report["findings"])
    assert report["ok"] is True and report["counts"] == {"ok": 11, "warn": 0, "fail": 0}
    assert (report["bot_id"], report["client_id"], report["origin"]) == (
        BOT,
        "fade-factory",
        ALLOWED,
    )
    found = by_check(report)
    assert f"Access-Control-Allow-Origin: {ALLOWED}" in found["origin"]["message"]
    assert f"frame-ancestors 'self' {ALLOWED}" in found["origin"]["message"]
    assert found["llm"]["message"].startswith("the LLM answers: model ")
    assert " ms" in found["llm"]["message"]
    assert found["outbox"]["message"].startswith("delivering: last delivery ")
    assert found["leads"]["message"].startswith("last lead ")
    assert "ok: version" in found["daemon"]["message"]

    human = await asyncio.to_thread(site.cli, "doctor", BOT, "--url", site.base)
    assert human.exit_code == 0, human.output
    lines = human.stdout.splitlines()
    assert len(lines) == 11 and all(line.startswith("✓ ") for line in lines)
    assert "doctor: 11 ok, 0 warning(s), 0 failed" in human.stderr


# ---- planted faults, each found with its fix --------------------------------------------------


async def test_a_wrong_origin_is_found_with_its_fix(site: Site) -> None:
    code, report = await site.doctor(BOT, "--origin", "https://Evil.example/")
    assert code == 1 and report["ok"] is False and report["origin"] == EVIL
    origin = by_check(report)["origin"]
    assert origin["status"] == "fail"
    assert f"{EVIL} is not allowed for {BOT} (allowed: {ALLOWED})" in origin["message"]
    assert origin["fix"] == f"tcai bots set {BOT} allowed_origins={EVIL},{ALLOWED}"
    # A refused origin is not requested from the daemon, so the doctor adds no log line.
    assert "widget_config" not in by_check(report)
    assert not refusal_lines(site.log_dir)

    await site.run_fix(origin["fix"])
    code, report = await site.doctor(BOT, "--origin", EVIL)
    assert by_check(report)["origin"]["status"] == "ok"


async def test_a_paused_bot_is_found_with_its_fix(site: Site, cli) -> None:
    paused = cli("bots", "pause", BOT, "--reason", "owner asked")
    assert paused.exit_code == 0, paused.output
    code, report = await site.doctor(BOT)
    assert code == 1
    bot = by_check(report)["bot"]
    assert bot["status"] == "fail" and "owner asked" in bot["message"]
    assert bot["fix"] == f"tcai bots resume {BOT}"
    await site.run_fix(bot["fix"])
    code, report = await site.doctor(BOT)
    assert by_check(report)["bot"]["status"] == "ok"


async def test_a_suspended_workspace_is_found_with_its_fix(site: Site, cli) -> None:
    done = cli("clients", "suspend", "fade-factory", "--reason", "unpaid")
    assert done.exit_code == 0, done.output
    code, report = await site.doctor(BOT)
    found = by_check(report)
    assert code == 1 and found["workspace"]["status"] == "fail"
    assert found["workspace"]["fix"] == found["bot"]["fix"] == "tcai clients resume fade-factory"
    await site.run_fix(found["workspace"]["fix"])
    code, report = await site.doctor(BOT)
    found = by_check(report)
    assert (found["bot"]["status"], found["workspace"]["status"]) == ("ok", "ok")


@pytest.mark.parametrize(
    ("fault", "kind", "fix"),
    [
        ("error", "server_error", "start the LLM server or set OPENAI_BASE_URL"),
        ("unauthorized", "unauthorized", "set a valid OPENAI_API_KEY in .env"),
        ("closed_port", "connection_refused", "start the LLM server or set OPENAI_BASE_URL"),
    ],
)
async def test_a_dead_llm_endpoint_is_found_with_its_fix(
    site: Site, monkeypatch, fault, kind, fix
) -> None:
    if fault == "closed_port":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    else:
        site.stub.mode = fault
    code, report = await site.doctor(BOT)
    assert code == 1
    llm = by_check(report)["llm"]
    assert llm["status"] == "fail" and llm["message"].startswith(
        f"the LLM does not answer ({kind})"
    )
    assert llm["fix"].startswith(fix) and llm["fix"].endswith("then tcai llm check")
    assert [f["check"] for f in report["findings"] if f["status"] == "fail"] == ["llm"]


async def test_no_key_means_facts_mode_answers(site: Site, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    site.stub.mode = "error"  # never asked
    code, report = await site.doctor(BOT)
    assert code == 0, report
    llm = by_check(report)["llm"]
    assert llm["status"] == "ok" and llm["message"].startswith("facts mode: no OPENAI_API_KEY")
    assert site.stub.requests == []


async def test_a_dead_webhook_is_found_with_its_fix(site: Site) -> None:
    site.receiver.fail = True
    assert await site.chat(LEAD_MESSAGE) == 200
    dead = await site.outbox_settles("dead")
    code, report = await site.doctor(BOT)
    assert code == 1
    outbox = by_check(report)["outbox"]
    assert outbox["status"] == "fail"
    assert (
        f"1 dead letter(s) for {BOT}: #{dead.id} lead.created to {site.receiver.url}"
        in (outbox["message"])
    )
    assert "HTTP 500" in outbox["message"]
    assert outbox["fix"].endswith(f"then tcai outbox retry {dead.id}")

    site.receiver.fail = False  # the receiver mended; then the fix's command
    await site.run_fix("tcai " + outbox["fix"].rpartition("then tcai ")[2])
    await site.outbox_settles("delivered")
    code, report = await site.doctor(BOT)
    assert by_check(report)["outbox"]["status"] == "ok"


async def test_a_locked_user_is_found_with_its_fix(site: Site) -> None:
    email = "owner@fadefactory.com"
    password = secrets.token_urlsafe(16)
    create_user(site.engine, email, password, workspace="fade-factory", role="owner")
    settings = load_settings()
    for _ in range(settings.login_max_attempts):
        with pytest.raises(LoginFailed):
            login(site.engine, settings, email, "not-" + password)
    code, report = await site.doctor("--user", email.upper())
    assert code == 1 and report["user"] == email
    found = by_check(report)
    assert [f["check"] for f in report["findings"]] == ["user", "lockout", "last_login"]
    assert found["lockout"]["status"] == "fail"
    assert f"{email} is locked out until " in found["lockout"]["message"]
    assert f"after {settings.login_max_attempts} failed login(s)" in found["lockout"]["message"]
    assert found["lockout"]["fix"] == f"tcai users unlock {email}"
    assert found["last_login"]["message"] == "last login never"

    await site.run_fix(found["lockout"]["fix"])
    code, report = await site.doctor("--user", email)
    assert code == 0 and by_check(report)["lockout"]["status"] == "ok"
    login(site.engine, settings, email, password)
    code, report = await site.doctor("--user", email)
    assert by_check(report)["last_login"]["message"].startswith("last login 20")


async def test_a_disabled_and_an_unknown_user(site: Site, cli) -> None:
    email = "staff@fadefactory.com"
    create_user(site.engine, email, secrets.token_urlsafe(16), workspace="fade-factory")
    assert cli("users", "disable", email).exit_code == 0
    code, report = await site.doctor("--user", email)
    user = by_check(report)["user"]
    assert code == 1 and user["fix"] == f"tcai users disable {email} --enable"
    await site.run_fix(user["fix"])
    assert (await site.doctor("--user", email))[0] == 0
    code, report = await site.doctor("--user", "nobody@fadefactory.com")
    assert code == 1 and by_check(report)["user"]["status"] == "fail"


async def test_a_daemon_that_is_down_is_one_finding(site: Site, cli) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = await asyncio.to_thread(
        cli, "doctor", BOT, "--url", f"http://127.0.0.1:{port}", "--json"
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    failed = [f for f in report["findings"] if f["status"] == "fail"]
    assert [f["check"] for f in failed] == ["daemon"]
    assert failed[0]["message"].startswith(f"no daemon answers at http://127.0.0.1:{port}/")
    assert failed[0]["fix"].startswith("tcai serve")


def test_bad_input_is_one_line(migrated, cli) -> None:
    unknown = cli("doctor", "no-such-bot")
    assert unknown.exit_code == 1 and unknown.stderr.strip() == (
        "error: no bot 'no-such-bot'; see tcai bots list"
    )
    lonely = cli("doctor", "--origin", ALLOWED)
    assert lonely.exit_code == 2 and "--origin needs a BOT" in lonely.stderr
    garbled = cli("doctor", BOT, "--origin", "evil.example/path")
    assert garbled.exit_code == 2 and "is not an origin like https://" in garbled.stderr
    assert "Traceback" not in unknown.output + lonely.output + garbled.output


# ---- the daemon's log line for a refused origin ----------------------------------------------


def refusal_lines(log_dir: Path) -> list[dict[str, Any]]:
    path = log_dir / "tcai.jsonl"
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [line for line in lines if line["event"] == "widget origin refused"]


async def test_a_refused_origin_is_logged_once_a_minute_per_pair(site: Site) -> None:
    for _ in range(3):
        assert await site.get(CONFIG_PATH, EVIL) == 403
    assert await site.get(CONFIG_PATH, "https://other.example") == 403
    assert await site.get(CONFIG_PATH, ALLOWED) == 200
    lines = refusal_lines(site.log_dir)
    assert [(line["bot_id"], line["origin"], line["level"]) for line in lines] == [
        (BOT, EVIL, "warning"),
        (BOT, "https://other.example", "warning"),
    ]
    # A minute later (the throttle's clock moved back by 61 s), the pair is logged again.
    refusals = site.app[ORIGIN_REFUSALS]
    refusals[(BOT, EVIL)] -= 61
    assert await site.get(CONFIG_PATH, EVIL) == 403
    assert await site.get(CONFIG_PATH, EVIL) == 403
    assert [line["origin"] for line in refusal_lines(site.log_dir)] == [
        EVIL,
        "https://other.example",
        EVIL,
    ]

    code, report = await site.doctor(BOT)
    refused = by_check(report)["refused_origins"]
    assert code == 0 and refused["status"] == "warn"
    assert EVIL in refused["message"] and "https://other.example" in refused["message"]
    assert refused["fix"] == (
        f"if it is the business's own site: tcai bots set {BOT} allowed_origins={EVIL},{ALLOWED}"
    )


async def test_the_refusal_throttle_stays_bounded(site: Site, monkeypatch) -> None:
    from tcai.daemon import origins

    monkeypatch.setattr(origins, "REFUSAL_LOG_PAIRS", 3)
    for n in range(5):
        assert await site.get(CONFIG_PATH, f"https://site{n}.example") == 403
    assert len(site.app[ORIGIN_REFUSALS]) == 3
    assert len(refusal_lines(site.log_dir)) == 3
