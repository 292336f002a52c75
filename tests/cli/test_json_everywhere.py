"""`--json` on every command that reports something (docs/cli.md, "JSON shapes").

The whole command tree is walked, every lazily loaded group included: a command without
`--json` fails unless `NO_JSON` names it with the reason. Every command with `--json`
is run with it by at least one test (most live beside the feature; the ones added with
the option are here): this file reads every test's source for a call of the command
with `--json` in a module that parses JSON.
"""

from __future__ import annotations

import ast
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import typer.main
from sqlmodel import Session, select
from typer.core import TyperGroup

from tcai.cli.main import LAZY, app
from tcai.config import new_secret
from tcai.db.models import AuditLog, Lockout, User, UserSession
from tcai.db.types import utcnow
from tests.conftest import REPO, provision, run_tcai
from tests.daemon.test_serve import free_port
from tests.helpers import rows

NO_JSON: dict[str, str] = {
    # Runs the daemon until it is stopped; what it has to say is its log (stderr and
    # LOG_DIR), and `tcai health --json` asks a running daemon for its state.
    "serve": "runs the daemon; its reports are its log and `tcai health --json`",
    # Its output is the data itself: CSV for people, or `--format json`, one JSON array
    # of the leads (the shape of `leads list --json`). A report beside it would mix.
    "leads export": "prints the data itself; `--format json` is its JSON",
    # Always exactly one JSON document (to stdout, or to --output with a stderr line).
    "privacy export": "always prints one JSON document",
}
"""Commands that report nothing a script needs as JSON, each with its reason."""


def _walk(command: object, path: tuple[str, ...]) -> Iterator[tuple[str, object]]:
    if isinstance(command, TyperGroup):
        for name, sub in sorted(command.commands.items()):
            yield from _walk(sub, (*path, name))
    else:
        yield " ".join(path), command


def command_tree() -> dict[str, set[str]]:
    """Every runnable command (hidden aliases too), by its words, with its options."""
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    found: dict[str, set[str]] = {}
    for name in root.commands:
        loaded = root.load(name) if name in LAZY else root.commands[name]
        for path, command in _walk(loaded, (name,)):
            params = getattr(command, "params", [])
            found[path] = {opt for param in params for opt in getattr(param, "opts", [])}
    return found


def json_calls() -> dict[str, list[list[str]]]:
    """Every test under tests/ (`file::name`) in a module that reads JSON (`json.loads`),
    with the string arguments of each call or tuple in it that holds "--json"."""
    found: dict[str, list[list[str]]] = {}
    for file in sorted((REPO / "tests").rglob("test_*.py")):
        source = file.read_text(encoding="utf-8")
        if "json.loads" not in source:
            continue
        for node in ast.parse(source).body:
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            words = []
            for inner in ast.walk(node):
                if isinstance(inner, ast.Call):
                    items = inner.args
                elif isinstance(inner, (ast.Tuple, ast.List)):
                    items = inner.elts
                else:
                    continue
                strings = [
                    a.value
                    for a in items
                    if isinstance(a, ast.Constant) and isinstance(a.value, str)
                ]
                if "--json" in strings:
                    words.append(strings)
            if words:
                found[f"{file.relative_to(REPO).as_posix()}::{node.name}"] = words
    return found


def _runs(words: list[str], command: str) -> bool:
    wanted = command.split()
    return any(words[i : i + len(wanted)] == wanted for i in range(len(words)))


def test_every_reporting_command_has_json() -> None:
    tree = command_tree()
    assert len(tree) > 40 and "cache invalidate" in tree, sorted(tree)
    missing = sorted(p for p, opts in tree.items() if "--json" not in opts and p not in NO_JSON)
    assert not missing, f"commands without --json (add it, or say why in NO_JSON): {missing}"
    stale = sorted(p for p in NO_JSON if p not in tree or "--json" in tree[p])
    assert not stale, f"NO_JSON names commands that are gone or now have --json: {stale}"


def test_every_json_command_is_run_with_json_by_a_test() -> None:
    with_json = sorted(p for p, opts in command_tree().items() if "--json" in opts)
    calls = json_calls()
    untested = [
        command
        for command in with_json
        if not any(_runs(words, command) for found in calls.values() for words in found)
    ]
    assert not untested, f"no test runs these with --json and reads the document: {untested}"


def _doc(result: object) -> object:
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    return json.loads(result.stdout)  # type: ignore[attr-defined]


def test_cache_invalidate_json(cli, barber, migrated) -> None:
    one = _doc(cli("cache", "invalidate", barber, "--json"))
    assert one == {"bot_id": barber, "all_bots": False, "reload_within_seconds": 2}
    every = _doc(cli("cache", "invalidate", "--json"))
    assert every["bot_id"] is None and every["all_bots"] is True
    actions = [a.target for a in rows(migrated, AuditLog, AuditLog.action == "cache.invalidate")]
    assert sorted(actions) == sorted([barber, "*"])
    unknown = cli("cache", "invalidate", "no-such-bot", "--json")
    assert unknown.exit_code == 1 and unknown.stdout == "" and "no-such-bot" in unknown.stderr


def test_embed_and_preview_link_json(cli, seeded, monkeypatch) -> None:
    bot = provision(seeded, allowed_origins=["https://fadefactory.example.org"])
    monkeypatch.setenv("WIDGET_SECRET", new_secret())
    base = "https://chat.agency.example"
    embed = _doc(cli("embed", bot, "--url", base, "--json"))
    assert embed == {
        "bot_id": bot,
        "client_id": "fade-factory",
        "snippet": f'<script src="{base}/widget/embed.js" data-client="fade-factory" '
        f'data-bot="{bot}" async></script>',
        "script_url": f"{base}/widget/embed.js",
        "allowed_origins": ["https://fadefactory.example.org"],
    }
    link = _doc(cli("preview-link", bot, "--ttl", "2h", "--url", base, "--json"))
    assert set(link) == {"bot_id", "client_id", "url", "expires_at"}
    assert link["url"].startswith(f"{base}/preview/ey")
    from datetime import datetime

    lasts = datetime.fromisoformat(link["expires_at"]) - utcnow()
    assert timedelta(hours=1, minutes=58) < lasts <= timedelta(hours=2)


def test_users_passwd_unlock_disable_json(cli, barber, migrated, monkeypatch) -> None:
    monkeypatch.setenv("TCAI_PASSWORD", "correct horse battery staple " + new_secret()[:6])
    _doc(cli("users", "create", "--email", "Ana@FadeFactory.shop", "--json"))
    engine = migrated.engine()
    with Session(engine) as session:
        user = session.exec(select(User)).one()
        session.add(
            UserSession(token_hash="a" * 64, user_id=user.id, csrf_token="c", expires_at=utcnow())
        )
        locked_until = utcnow() + timedelta(minutes=10)
        session.add(Lockout(email=user.email, failed_count=7, locked_until=locked_until))
        session.commit()
    engine.dispose()
    monkeypatch.setenv("TCAI_PASSWORD", "an even longer pass phrase " + new_secret()[:6])
    changed = _doc(cli("users", "passwd", "ana@fadefactory.shop", "--json"))
    assert changed == {
        "email": "ana@fadefactory.shop",
        "password_changed": True,
        "sessions_ended": 1,
    }
    unlocked = _doc(cli("users", "unlock", "ANA@fadefactory.shop", "--json"))
    assert unlocked["email"] == "ana@fadefactory.shop" and unlocked["was_locked"] is True
    assert unlocked["failed_logins_cleared"] == 7 and unlocked["locked_until"].startswith("20")
    again = _doc(cli("users", "unlock", "ana@fadefactory.shop", "--json"))
    assert again["was_locked"] is False and again["failed_logins_cleared"] == 0
    disabled = _doc(cli("users", "disable", "ana@fadefactory.shop", "--json"))
    assert disabled == {"email": "ana@fadefactory.shop", "disabled": True, "sessions_ended": 0}
    enabled = _doc(cli("users", "disable", "ana@fadefactory.shop", "--enable", "--json"))
    assert enabled["disabled"] is False
    ghost = cli("users", "passwd", "ghost@fadefactory.shop", "--json")
    assert ghost.exit_code == 1 and ghost.stdout == ""


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _first_document(process: subprocess.Popen[str]) -> dict:
    """The one JSON document a serving command prints when it is ready."""
    assert process.stdout is not None
    text = ""
    for line in process.stdout:
        text += line
        try:
            return json.loads(text)
        except ValueError:
            continue
    raise AssertionError(f"no JSON document; stderr: {process.communicate()[1]}")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_demo_no_serve_says_how_to_serve_and_that_command_serves(database, tmp_path) -> None:
    """`demo --no-serve` names the command that serves what it made; run as printed (plus
    --json), that command serves /demo/, where `tcai serve` answers 404."""
    port = free_port()
    env = {"DATABASE_URL": database.url, "LOG_DIR": str(tmp_path / "logs")}
    made = run_tcai("demo", "--no-serve", "--port", str(port), env=env)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == f"http://127.0.0.1:{port}/demo/"
    assert f"to serve the demo pages run: tcai demo --port {port}" in made.stderr
    document = json.loads(
        run_tcai("demo", "--no-serve", "--port", str(port), "--json", env=env).stdout
    )
    assert document == {
        "url": f"http://127.0.0.1:{port}/demo/",
        "businesses": 17,
        "created": 0,
        "serving": False,
        "serve_command": f"tcai demo --port {port}",
    }
    words = shlex.split(document["serve_command"])
    assert words[0] == "tcai"
    process = subprocess.Popen(
        [sys.executable, "-m", "tcai", *words[1:], "--json"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        served = _first_document(process)
        assert served["serving"] is True and served["url"] == document["url"]
        assert _get(served["url"]) == 200
    finally:
        _stop(process)
    plain = subprocess.Popen(
        [sys.executable, "-m", "tcai", "serve", "--port", str(port)],
        env={**os.environ, **env, "WIDGET_SECRET": new_secret()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(300):
            try:
                if _get(f"http://127.0.0.1:{port}/api/health") == 200:
                    break
            except OSError:
                time.sleep(0.05)
        assert _get(document["url"]) == 404, "tcai serve does not serve the demo pages"
    finally:
        _stop(plain)


def test_demo_names_a_non_default_env_file_and_host(tmp_path) -> None:
    from tcai.cli.daemon_cmd import demo_serve_command

    assert demo_serve_command(Path(".env"), None, None) == "tcai demo"
    assert (
        demo_serve_command(Path("my dir/.env"), "0.0.0.0", 8080)
        == "tcai --env-file 'my dir/.env' demo --host 0.0.0.0 --port 8080"
    )


def test_rotation_advice_names_the_command_that_serves_the_demo_too(cli, migrated) -> None:
    Path(".env").write_text("TCAI_ENV=development\n", encoding="utf-8")
    result = cli("secrets", "rotate")
    assert result.exit_code == 0, result.output
    assert "`tcai serve`, or `tcai demo` if it was serving the demo pages" in result.stderr
    document = _doc(cli("secrets", "rotate", "--dry-run", "--json"))
    assert document["next_step"] == "run again without --dry-run to rotate"


def test_a_missing_widget_secret_advises_a_command_that_writes_one(cli, barber) -> None:
    """`tcai init` keeps an existing .env, so advising it for a .env without
    WIDGET_SECRET led nowhere; `tcai secrets rotate` writes one."""
    Path(".env").write_text("TCAI_ENV=development\n", encoding="utf-8")
    refused = cli("preview-link", barber)
    assert refused.exit_code == 2 and "run `tcai secrets rotate`" in refused.stderr
    assert cli("secrets", "rotate").exit_code == 0
    link = cli("preview-link", barber)
    assert link.exit_code == 0, link.output
    assert "/preview/ey" in link.stdout


def _paused(result: object, bot: str) -> None:
    document = _doc(result)
    assert document["bot_id"] == bot and document["status"] == "paused", document
    assert "owner asked" in document["paused_reason"]


def _resumed(result: object, bot: str) -> None:
    document = _doc(result)
    assert document["bot_id"] == bot and document["status"] == "active", document


def test_kill_switch_json(cli, barber) -> None:
    """`bots pause/resume` and the hidden old spelling `bot disable/enable` print the same
    document."""
    _paused(cli("bots", "pause", barber, "--reason", "owner asked", "--json"), barber)
    _resumed(cli("bots", "resume", barber, "--json"), barber)
    _paused(cli("bot", "disable", barber, "--reason", "owner asked", "--json"), barber)
    _resumed(cli("bot", "enable", barber, "--json"), barber)


def test_outbox_retry_json(cli, migrated, barber) -> None:
    from tests.delivery.test_outbox import add_item

    outbox_id = add_item(migrated, "https://hooks.fadefactory.example.org/leads")
    item = _doc(cli("outbox", "retry", str(outbox_id), "--reason", "receiver fixed", "--json"))
    assert item["id"] == outbox_id and item["status"] == "pending"
    assert [a.reason for a in rows(migrated, AuditLog, AuditLog.action == "outbox.retry")] == [
        "receiver fixed"
    ]
