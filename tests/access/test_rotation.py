"""`tcai secrets rotate`: atomic, faithful to the file, live widgets keep working."""

from __future__ import annotations

import json
import re
import stat
import time
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from sqlmodel import Session, select

from tcai.access.tokens import InvalidToken, mint_widget_token, verify_widget_token
from tcai.config import load_settings, new_secret
from tcai.db.models import AuditLog, User, UserSession
from tcai.db.types import utcnow

URLSAFE = re.compile(r"^[A-Za-z0-9_-]{48,}$")


def write_env(path: Path, widget: str, session: str) -> str:
    text = (
        "# production settings\n"
        "export TCAI_ENV=development\n"
        f'SESSION_SECRET="{session}"\n'
        "\n"
        "# the widget signs tokens with this\n"
        f"export WIDGET_SECRET='{widget}'\n"
        "OPENAI_MODEL=gpt-4o-mini  # the cheap one\n"
    )
    path.write_text(text)
    path.chmod(0o644)
    return text


def values(path: Path) -> dict[str, str]:
    from tcai.access.rotation import parse_env

    return {line.key: line.value or "" for line in parse_env(path.read_text()) if line.key}


def add_sessions(database) -> None:
    engine = database.engine()
    with Session(engine) as session:
        user = User(email="owner@fadefactory.example.org", password_hash="x")
        session.add(user)
        session.flush()
        for i in range(2):
            session.add(
                UserSession(
                    token_hash=f"{i:064d}",
                    user_id=user.id,
                    csrf_token="c",
                    expires_at=utcnow() + timedelta(hours=1),
                )
            )
        session.commit()
    engine.dispose()


def test_rotate_keeps_the_file_and_ends_sessions(cli, migrated, isolated_env) -> None:
    env = isolated_env / ".env"
    old_widget, old_session = new_secret(), new_secret()
    write_env(env, old_widget, old_session)
    add_sessions(migrated)
    result = cli("secrets", "rotate", "--env-file", str(env), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["sessions_ended"] == 2 and "restart the daemon" in report["next_step"]
    text = env.read_text()
    new = values(env)
    assert URLSAFE.match(new["SESSION_SECRET"]) and URLSAFE.match(new["WIDGET_SECRET"])
    assert new["SESSION_SECRET"] not in (old_session, old_widget)
    assert new["WIDGET_SECRET_PREVIOUS"] == old_widget
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", new["WIDGET_SECRET_ROTATED_AT"])
    # Every other line, comment, export prefix and quote style is kept.
    assert text.startswith('# production settings\nexport TCAI_ENV=development\nSESSION_SECRET="')
    assert "\n\n# the widget signs tokens with this\nexport WIDGET_SECRET='" in text
    assert "OPENAI_MODEL=gpt-4o-mini  # the cheap one\n" in text
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert [p.name for p in isolated_env.iterdir() if p.name.startswith(".env.")] == []
    engine = migrated.engine()
    with Session(engine) as session:
        assert all(s.revoked_at is not None for s in session.exec(select(UserSession)))
        audit = session.exec(select(AuditLog).where(AuditLog.action == "secrets.rotate")).one()
    engine.dispose()
    assert audit.after == {
        "rotated": [
            "SESSION_SECRET",
            "WIDGET_SECRET",
            "WIDGET_SECRET_PREVIOUS",
            "WIDGET_SECRET_ROTATED_AT",
        ],
        "sessions_ended": 2,
    }
    assert old_widget not in json.dumps(audit.after) and old_widget not in result.output


def test_dry_run_writes_nothing(cli, migrated, isolated_env) -> None:
    env = isolated_env / ".env"
    before = write_env(env, new_secret(), new_secret())
    result = cli("secrets", "rotate", "--env-file", str(env), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would rotate" in result.stdout
    assert env.read_text() == before


def test_missing_env_file(cli, migrated, isolated_env) -> None:
    result = cli("secrets", "rotate", "--env-file", str(isolated_env / "nope.env"))
    assert result.exit_code == 1 and "no env file" in result.stderr


def test_widget_tokens_survive_one_rotation_but_not_two(
    cli, migrated, isolated_env, monkeypatch
) -> None:
    env = isolated_env / ".env"
    write_env(env, new_secret(), new_secret())
    before = load_settings(env)
    token, _ = mint_widget_token(before, "c1", "c1_main", "https://shop.example.org")

    assert cli("secrets", "rotate", "--env-file", str(env)).exit_code == 0
    after_one = load_settings(env)
    assert (
        verify_widget_token(after_one, token, "c1", "c1_main").origin == "https://shop.example.org"
    )
    fresh, _ = mint_widget_token(after_one, "c1", "c1_main", "https://shop.example.org")
    assert verify_widget_token(after_one, fresh, "c1", "c1_main")

    # A token signed with the retired secret but dated after its retirement is refused.
    previous = after_one.widget_secret_previous.get_secret_value()
    late = jwt.encode(
        {
            "typ": "widget",
            "cid": "c1",
            "aud_bot": "c1_main",
            "origin": "https://shop.example.org",
            "iss": "tcai",
            "iat": int(time.time()) + 120,
            "exp": int(time.time()) + 600,
        },
        previous,
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken):
        verify_widget_token(after_one, late, "c1", "c1_main")

    assert cli("secrets", "rotate", "--env-file", str(env)).exit_code == 0
    after_two = load_settings(env)
    with pytest.raises(InvalidToken):
        verify_widget_token(after_two, token, "c1", "c1_main")
    assert verify_widget_token(after_two, fresh, "c1", "c1_main")
