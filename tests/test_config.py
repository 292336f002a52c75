"""Configuration: defaults, normalisation, production rules, all problems at once."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tcai.config import DEFAULT_DATABASE_URL, load_settings, new_secret
from tcai.errors import ConfigError


def test_defaults_follow_the_spec() -> None:
    settings = load_settings()
    assert settings.tcai_env == "development"
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.openai_api_key is None
    assert settings.openai_model == "gpt-4o-mini"
    assert settings.llm_timeout_ms == 4500
    assert settings.session_idle_timeout_minutes == 30
    assert settings.login_max_attempts == 5
    assert settings.login_lockout_minutes == 15
    assert settings.log_level == "info"
    assert settings.log_dir == Path("logs")
    assert settings.demo_safe_mode is False
    assert settings.request_timeout_ms == 30000
    assert (settings.host, settings.port) == ("127.0.0.1", 5000)
    assert settings.widget_allowed_origins == ()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u@db:5432/app", "postgresql+psycopg://u@db:5432/app"),
        ("postgresql://u@db/app", "postgresql+psycopg://u@db/app"),
        ("postgresql+psycopg://u@db/app", "postgresql+psycopg://u@db/app"),
        ("sqlite:///./x.db", "sqlite:///./x.db"),
    ],
)
def test_database_urls_are_normalised(
    monkeypatch: pytest.MonkeyPatch, given: str, expected: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", given)
    assert load_settings().database_url == expected


def test_node_env_is_honoured_and_tcai_env_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_ENV", "test")
    assert load_settings().tcai_env == "test"
    monkeypatch.setenv("TCAI_ENV", "development")
    assert load_settings().tcai_env == "development"


def test_origins_are_parsed_from_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIDGET_ALLOWED_ORIGINS", "https://Shop.Example.com/, http://localhost:8080")
    assert load_settings().widget_allowed_origins == (
        "https://shop.example.com",
        "http://localhost:8080",
    )


def test_production_reports_every_problem_at_once_without_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short = "s" * 7
    placeholder = "changeme-" * 5
    monkeypatch.setenv("TCAI_ENV", "production")
    monkeypatch.setenv("SESSION_SECRET", short)
    monkeypatch.setenv("WIDGET_SECRET", placeholder)
    monkeypatch.setenv("PORT", "eighty")
    monkeypatch.setenv("LOG_LEVEL", "loud")
    monkeypatch.setenv("WIDGET_ALLOWED_ORIGINS", "ftp://files.example.com")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    lines = caught.value.details
    names = [line.split(":", 1)[0] for line in lines]
    assert sorted(names) == sorted(
        [
            "DATABASE_URL",
            "SESSION_SECRET",
            "WIDGET_SECRET",
            "PORT",
            "LOG_LEVEL",
            "WIDGET_ALLOWED_ORIGINS",
        ]
    )
    text = "\n".join(lines)
    assert short not in text and placeholder not in text
    assert "required in production" in text
    assert "at least 32 characters" in text
    assert "placeholder" in text


def test_production_accepts_strong_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TCAI_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db.internal/tcai")
    monkeypatch.setenv("SESSION_SECRET", new_secret())
    monkeypatch.setenv("WIDGET_SECRET", new_secret())
    settings = load_settings()
    assert settings.is_production


def test_dotenv_file_is_read_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    (isolated_env / ".env").write_text("OPENAI_MODEL=from-file\nPORT=6000\n")
    monkeypatch.setenv("PORT", "7000")
    settings = load_settings()
    assert settings.openai_model == "from-file"
    assert settings.port == 7000


def test_config_show_masks_secrets(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = new_secret()
    monkeypatch.setenv("WIDGET_SECRET", secret)
    monkeypatch.setenv("OPENAI_API_KEY", "k-" + new_secret())
    result = cli("config", "show", "--json")
    assert result.exit_code == 0, result.output
    view = json.loads(result.stdout)
    assert view["WIDGET_SECRET"] == "********"
    assert view["OPENAI_API_KEY"] == "********"
    assert view["SESSION_SECRET"] is None
    assert secret not in result.output
    human = cli("config", "show")
    assert secret not in human.output and "WIDGET_SECRET" in human.stdout


def test_bad_configuration_exits_2_with_one_line_per_variable(
    cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_TIMEOUT_MS", "soon")
    monkeypatch.setenv("REQUEST_TIMEOUT_MS", "5")
    result = cli("config", "show")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "LLM_TIMEOUT_MS:" in result.stderr
    assert "REQUEST_TIMEOUT_MS:" in result.stderr
    assert result.stdout == ""


def test_init_writes_a_private_env_file_once(cli, database, isolated_env: Path) -> None:
    result = cli("init")
    assert result.exit_code == 0, result.output
    env_file = isolated_env / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = dict(
        line.split("=", 1)
        for line in env_file.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert len(values["SESSION_SECRET"]) >= 48 and len(values["WIDGET_SECRET"]) >= 48
    assert values["SESSION_SECRET"] != values["WIDGET_SECRET"]
    before = env_file.read_text()
    again = cli("init", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["env_file_created"] is False
    assert env_file.read_text() == before


@pytest.mark.parametrize(
    ("llm", "request_ms", "ok"),
    [("60000", "2000", False), ("4500", "5000", False), ("4500", "5500", True), (None, None, True)],
)
def test_the_llm_budget_must_fit_inside_the_request_timeout(
    cli, monkeypatch: pytest.MonkeyPatch, llm: str | None, request_ms: str | None, ok: bool
) -> None:
    if llm is not None:
        monkeypatch.setenv("LLM_TIMEOUT_MS", llm)
    if request_ms is not None:
        monkeypatch.setenv("REQUEST_TIMEOUT_MS", request_ms)
    result = cli("config", "show", "--json")
    if ok:
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if "TIMEOUT_MS" in line]
    assert len(lines) == 1 and lines[0].strip().startswith("REQUEST_TIMEOUT_MS:")
    assert "LLM_TIMEOUT_MS" in lines[0] and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30/minute", (30, 60.0)),
        ("500 per hour", (500, 3600.0)),
        ("10/5 minutes", (10, 300.0)),
        (" 2/Second ", (2, 1.0)),
        ("1/day", (1, 86400.0)),
    ],
)
def test_rates_read(text: str, expected: tuple[int, float]) -> None:
    from tcai.config import parse_rate

    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["", "30", "0/minute", "30/fortnight", "-1/minute", "3/0 hours"])
def test_bad_rates_are_refused(text: str) -> None:
    from tcai.config import parse_rate

    with pytest.raises(ValueError, match="is not a rate"):
        parse_rate(text)
