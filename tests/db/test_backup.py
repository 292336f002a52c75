"""`tcai db backup` / `tcai db restore` on this run's engine (docs/operations.md).

SQLite: the online backup API and a checked, transactional restore. PostgreSQL: the real
pg_dump / pg_restore / psql against the test's own schema (its URL carries
`options=-csearch_path=<schema>`). Tools that are missing or of the wrong version are
played by an empty PATH and a stand-in script, since neither can be installed here.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tcai.db.backup import pg_target, url_schema
from tcai.db.migrate import revisions, upgrade
from tests.conftest import engine_kind, provision

UNREACHABLE_PG = "postgresql://postgres@127.0.0.1:1/test"


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """A umask that would leave new files world-readable: backups must not be."""
    old = os.umask(0o000)
    yield
    os.umask(old)


def _scalar(database, sql: str) -> object:
    engine = database.engine()
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(sql).scalar_one()
    finally:
        engine.dispose()


def _tables(database) -> set[str]:
    engine = database.engine()
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_backup_then_restore_brings_the_data_back(
    cli, seeded, barber, tmp_path, loose_umask
) -> None:
    target = tmp_path / "before.backup"
    made = cli("db", "backup", str(target), "--json")
    assert made.exit_code == 0, made.output
    report = json.loads(made.stdout)
    assert report["path"] == str(target) and report["bytes"] == target.stat().st_size > 0
    assert report["engine"] == engine_kind()
    assert report["revision"] == revisions()[-1]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600

    # After the backup: the bot is paused and a second client appears.
    assert cli("bot", "disable", barber, "--reason", "incident").exit_code == 0
    provision(seeded, slug="clip-joint", name="Clip Joint")
    assert _scalar(seeded, "SELECT COUNT(*) FROM workspace") == 2

    restored = cli("db", "restore", str(target), "--yes", "--json")
    assert restored.exit_code == 0, restored.output
    document = json.loads(restored.stdout)
    assert document["revision"] == revisions()[-1] and document["engine"] == engine_kind()
    assert "stop every daemon" in restored.stderr
    assert _scalar(seeded, "SELECT COUNT(*) FROM workspace") == 1
    assert _scalar(seeded, f"SELECT status FROM bot WHERE bot_id = '{barber}'") == "active"
    status = cli("db", "status", "--json")
    assert status.exit_code == 0 and json.loads(status.stdout)["up_to_date"] is True
    # The daemon's own engine works on the restored database, reads and writes.
    assert cli("bot", "disable", barber, "--reason", "after restore").exit_code == 0


def test_an_existing_backup_file_needs_force(cli, migrated, tmp_path) -> None:
    target = tmp_path / "tcai.backup"
    target.write_bytes(b"an older backup")
    refused = cli("db", "backup", str(target))
    assert refused.exit_code == 1
    assert "already exists" in refused.stderr and "--force" in refused.stderr
    assert target.read_bytes() == b"an older backup"
    forced = cli("db", "backup", str(target), "--force")
    assert forced.exit_code == 0, forced.output
    assert target.read_bytes() != b"an older backup"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left
    folder = cli("db", "backup", str(tmp_path / "missing" / "x.backup"))
    assert folder.exit_code == 2 and "does not exist" in folder.stderr


def test_restore_needs_yes_and_checks_the_file_first(cli, migrated, tmp_path) -> None:
    backup = tmp_path / "ok.backup"
    assert cli("db", "backup", str(backup)).exit_code == 0
    unconfirmed = cli("db", "restore", str(backup))
    assert unconfirmed.exit_code == 2 and "--yes" in unconfirmed.stderr
    assert "stop every daemon" in unconfirmed.stderr

    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"not a database at all" * 10)
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    conn.close()
    other_engine = tmp_path / "other.backup"
    other_engine.write_bytes(
        b"PGDMP\x01\x0e\x00" if engine_kind() == "sqlite" else b"SQLite format 3\x00" + bytes(84)
    )
    for path, words in (
        (junk, "not"),
        (foreign, "SQLite backup" if engine_kind() == "postgresql" else "not a tcai backup"),
        (other_engine, "but DATABASE_URL is"),
        (tmp_path / "missing.backup", "no backup file"),
    ):
        result = cli("db", "restore", str(path), "--yes")
        assert result.exit_code in (1, 2), (path, result.output)
        assert words in result.stderr, (path, result.stderr)
        assert "Traceback" not in result.output
        assert [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert json.loads(cli("db", "status", "--json").stdout)["up_to_date"] is True


def test_a_restore_drops_what_later_migrations_added(cli, database, tmp_path) -> None:
    """The rollback: back up, upgrade (a new table appears), restore the backup."""
    chain = revisions()
    assert len(chain) >= 2, "the test needs a later revision to drop"
    engine = database.engine()
    try:
        upgrade(engine, chain[0])
        at_first = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    backup = tmp_path / "first.backup"
    made = json.loads(cli("db", "backup", str(backup), "--json").stdout)
    assert made["revision"] == chain[0]
    assert cli("db", "upgrade").exit_code == 0
    later = _tables(database) - at_first
    assert later

    restored = cli("db", "restore", str(backup), "--yes", "--json")
    assert restored.exit_code == 0, restored.output
    if engine_kind() == "postgresql":
        assert sorted(json.loads(restored.stdout)["dropped_tables"]) == sorted(later)
    assert _tables(database) == at_first
    status = json.loads(cli("db", "status", "--json").stdout)
    assert status["current"] == chain[0] and status["pending"] == chain[1:]
    assert cli("db", "upgrade").exit_code == 0  # and forward again


def test_a_backup_taken_while_writing_is_one_snapshot(cli, migrated, tmp_path) -> None:
    """A writer adds rows two per transaction while the backup runs: the backup holds
    whole transactions only (an even count)."""
    engine = migrated.engine()
    stop = threading.Event()
    written = threading.Event()

    def write() -> None:
        number = 0
        while not stop.is_set():
            with engine.begin() as conn:
                for _ in range(2):
                    number += 1
                    conn.exec_driver_sql(
                        "INSERT INTO cache_signal (name, version, updated_at) "
                        f"VALUES ('n{number}', 1, CURRENT_TIMESTAMP)"
                    )
            written.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert written.wait(30)
        backup = tmp_path / "busy.backup"
        result = cli("db", "backup", str(backup), "--json")
    finally:
        stop.set()
        writer.join()
        engine.dispose()
    assert result.exit_code == 0, result.output
    assert cli("db", "restore", str(backup), "--yes").exit_code == 0
    copied = _scalar(migrated, "SELECT COUNT(*) FROM cache_signal")
    assert isinstance(copied, int) and copied > 0 and copied % 2 == 0
    if engine_kind() == "sqlite":
        with sqlite3.connect(backup) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        conn.close()


def test_a_missing_sqlite_database_is_named_not_created(
    cli, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    database = tmp_path / "nowhere.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    result = cli("db", "backup", str(tmp_path / "x.backup"))
    assert result.exit_code == 2
    assert str(database) in result.stderr
    assert not database.exists() and not (tmp_path / "x.backup").exists()


def test_restore_into_a_missing_sqlite_file_creates_it_owner_only(
    cli, monkeypatch: pytest.MonkeyPatch, tmp_path, loose_umask
) -> None:
    database = tmp_path / "tcai.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    assert cli("db", "upgrade").exit_code == 0
    backup = tmp_path / "tcai.backup"
    assert cli("db", "backup", str(backup)).exit_code == 0
    database.unlink()
    for suffix in ("-wal", "-shm"):  # left behind by the lost database
        Path(f"{database}{suffix}").write_bytes(b"\x00stale" * 100)
    restored = cli("db", "restore", str(backup), "--yes")
    assert restored.exit_code == 0, restored.output
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert json.loads(cli("db", "status", "--json").stdout)["up_to_date"] is True


def test_missing_postgresql_tools_are_named_with_the_package(
    cli, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE_PG)
    backup = tmp_path / "x.backup"
    backup.write_bytes(b"PGDMP")
    for args in (
        ("db", "backup", str(tmp_path / "y.backup")),
        ("db", "restore", str(backup), "--yes"),
    ):
        result = cli(*args)
        assert result.exit_code == 2, result.output
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1
        assert "pg_dump" in errors[0] or "pg_restore" in errors[0]
        assert "postgresql-client" in errors[0]


def test_a_server_newer_than_pg_dump_is_one_actionable_line(
    cli, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """pg_dump refuses a newer server; the message says which client to install."""
    folder = tmp_path / "bin"
    folder.mkdir()
    fake = folder / "pg_dump"
    fake.write_text(
        "#!/bin/sh\n"
        "echo 'pg_dump: error: aborting because of server version mismatch' >&2\n"
        "echo 'pg_dump: detail: server version: 17.2; pg_dump version: 15.20' >&2\n"
        "exit 1\n"
    )
    fake.chmod(0o755)
    (folder / "pg_restore").symlink_to(fake)  # present; never reached
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE_PG)
    result = cli("db", "backup", str(tmp_path / "x.backup"))
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1
    assert "17.2" in result.stderr and "postgresql-client-17" in result.stderr
    assert not (tmp_path / "x.backup").exists()


def test_an_unreachable_server_is_named(cli, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE_PG)
    result = cli("db", "backup", str(tmp_path / "x.backup"))
    assert result.exit_code == 2, result.output
    assert "127.0.0.1:1" in result.stderr and "Traceback" not in result.output


def test_the_password_travels_in_the_environment_only() -> None:
    target = pg_target(
        "postgresql+psycopg://tcai:pw-" + "x" * 8 + "@db.internal:5433/tcai"
        "?options=-csearch_path%3Dtenant_a&sslmode=require"
    )
    assert "pw-" not in target.uri
    assert target.uri.startswith("postgresql://tcai@db.internal:5433/tcai?")
    assert "sslmode=require" in target.uri
    assert target.env["PGPASSWORD"] == "pw-" + "x" * 8
    assert target.schema == "tenant_a"
    assert "PGPASSWORD" not in pg_target("postgresql+psycopg://tcai@db/tcai").env


@pytest.mark.parametrize(
    ("options", "schema"),
    [
        ("", "public"),
        ("-csearch_path=t_abc", "t_abc"),
        ("-c search_path=t_abc,public", "t_abc"),
        ("-cstatement_timeout=5000 -csearch_path=x", "x"),
        ("-csearch_path=$user,public", "public"),
    ],
)
def test_the_schema_comes_from_the_urls_search_path(options: str, schema: str) -> None:
    assert url_schema(options) == schema


def test_postgresql_restore_refuses_another_schema_and_strange_tables(
    cli, migrated, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    if engine_kind() != "postgresql":
        pytest.skip("schemas are PostgreSQL's")
    backup = tmp_path / "pg.backup"
    assert cli("db", "backup", str(backup)).exit_code == 0
    engine = migrated.engine()
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE someone_elses (id int)")
    finally:
        engine.dispose()
    strange = cli("db", "restore", str(backup), "--yes")
    assert strange.exit_code == 1 and "someone_elses" in strange.stderr
    assert "someone_elses" in _tables(migrated)

    base = migrated.url.split("?")[0]
    monkeypatch.setenv("DATABASE_URL", base)
    other = cli("db", "restore", str(backup), "--yes")
    assert other.exit_code == 1
    assert "'public'" in other.stderr and "holds schema 't_" in other.stderr
