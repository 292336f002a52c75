"""The CLI's contract: version, exit codes, one-line errors, stdout/stderr discipline."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tcai import __version__
from tests.conftest import run_tcai


def test_version_in_process_and_as_module(cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"tcai {__version__}"
    proc = run_tcai("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"tcai {__version__}"


def test_unknown_command_is_a_usage_error(cli) -> None:
    result = cli("frobnicate")
    assert result.exit_code == 2


def test_unreachable_postgres_exits_2_naming_host_and_port(
    cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/test")
    for args in (("db", "status"), ("templates", "seed"), ("templates", "validate"), ("init",)):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "127.0.0.1:1" in result.stderr
        assert "Traceback" not in result.output
        assert len([line for line in result.stderr.splitlines() if line.strip()]) <= 2


def test_sqlite_in_a_missing_folder_is_named(
    cli, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/nope/tcai.db")
    result = cli("db", "status")
    assert result.exit_code == 2
    assert "nope" in result.stderr and "does not exist" in result.stderr


def test_commands_on_an_unmigrated_database_say_what_to_run(cli, database) -> None:
    database.engine().connect().close()  # an empty database that exists (SQLite: the file)
    result = cli("templates", "list")
    assert result.exit_code == 1
    assert "tcai db upgrade" in result.stderr
    status = cli("db", "status", "--json")
    assert status.exit_code == 1
    document = json.loads(status.stdout)
    assert document["up_to_date"] is False and document["current"] is None


def test_db_upgrade_then_status(cli, database) -> None:
    first = cli("db", "upgrade", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["applied"]
    second = cli("db", "upgrade", "--json")
    assert json.loads(second.stdout)["applied"] == []
    status = cli("db", "status", "--json")
    assert status.exit_code == 0
    assert json.loads(status.stdout)["up_to_date"] is True


def test_unexpected_errors_are_one_line_without_traceback(
    cli,
    seeded,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tcai.templates.validation as validation

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    # The command imports its core function when it runs, so patch it where it lives.
    monkeypatch.setattr(validation, "validate_stored", broken)
    result = cli("templates", "validate")
    assert result.exit_code == 1
    assert "internal error: RuntimeError: disk on fire" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_json_mode_prints_exactly_one_document(cli, seeded) -> None:
    for args in (
        ("templates", "list", "--json"),
        ("templates", "seed", "--json"),
        ("templates", "validate", "--json"),
        ("templates", "show", "barber", "--json"),
        ("templates", "suggest", "barbershop", "--json"),
        ("db", "status", "--json"),
        ("config", "show", "--json"),
    ):
        result = cli(*args)
        assert result.exit_code == 0, (args, result.output)
        json.loads(result.stdout)  # the whole of stdout is one document


def test_only_init_demo_and_upgrade_create_a_database(
    cli, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """Run from the wrong folder, a command names the file it looked for and creates
    nothing (an incident's kill switch must not go to a new empty database)."""
    target = tmp_path / "elsewhere" / "tcai.db"
    target.parent.mkdir()
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{target}")
    for args in (
        ("bot", "disable", "shop_main", "--reason", "x"),
        ("bots", "list"),
        ("db", "status"),
    ):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.stderr)
        assert f"no database at {target}" in result.stderr and "tcai init" in result.stderr
        assert not target.exists()
    assert cli("db", "upgrade").exit_code == 0
    assert target.exists() and stat.S_IMODE(target.stat().st_mode) == 0o600


def test_init_makes_owner_only_files_whatever_the_umask(cli, tmp_path) -> None:
    old = os.umask(0)
    try:
        assert cli("init").exit_code == 0
        logged = cli("db", "status")  # any command writes the log
        assert logged.exit_code == 0
    finally:
        os.umask(old)
    database = Path("tcai.db").resolve()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    for log in Path("logs").glob("*.jsonl"):
        assert stat.S_IMODE(log.stat().st_mode) == 0o600, log


def test_config_show_never_prints_a_database_password(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    password = "pw-" + "x7" * 6
    monkeypatch.setenv("DATABASE_URL", f"postgresql://tcai:{password}@db.internal:5432/tcai")
    for args in (("config", "show"), ("config", "show", "--json")):
        result = cli(*args)
        assert result.exit_code == 0, result.stderr
        assert password not in result.stdout + result.stderr
        assert "tcai:***@db.internal" in result.stdout
