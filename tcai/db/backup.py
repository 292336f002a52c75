"""Backups of the database and restoring them: the run book's rollback (docs/operations.md).

SQLite uses the online backup API, so a backup taken while a daemon writes is one
consistent snapshot; the file is made owner-only (0600) in the destination's folder and
renamed into place, in the rollback journal mode so it is one self-contained file.
A restore checks the backup first (a SQLite file, `quick_check`, an `alembic_version`
row) and then copies it into the live database with the same API: one write transaction
under SQLite's own locks, so the database's `-wal` and `-shm` stay consistent with it.
Renaming a file over a database would not be: a process that still had the old file open
would keep writing to a file nobody reads, and the old `-wal` would be replayed onto the
new one. Only a missing database is renamed into place (its stale `-wal`/`-shm`, if any
were left behind, are removed first).

PostgreSQL runs `pg_dump --format=custom` on the URL's schema (the first entry of a
`search_path` given in its `options`, else `public`) and restores with `pg_restore
--clean --if-exists --no-owner`, piped through `psql --single-transaction`: the whole
restore commits or nothing changes. Tables the backup lacks that tcai knows (made by a
later migration) are dropped in the same transaction; any other table stops the restore.
The password reaches the tools in `PGPASSWORD`, never on their command line.

Nothing here stops a running daemon: the commands say that every daemon must be stopped.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from tcai.db.engine import describe_url, prepare_sqlite_file, sqlite_path
from tcai.errors import (
    ConfigError,
    Conflict,
    DatabaseUnavailable,
    InvalidInput,
    TcaiError,
    UsageError,
)

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
BUSY_TIMEOUT_S = 15.0
TOOL_TIMEOUT_S = 3600
INSTALL_HINT = (
    "install the PostgreSQL client tools (Debian/Ubuntu: apt-get install postgresql-client)"
)


@dataclass(frozen=True)
class BackupReport:
    """What a backup or restore did, for the CLI's line and its `--json` document."""

    action: str  # "backup" or "restore"
    path: str
    bytes: int
    engine: str  # "sqlite" or "postgresql"
    revision: str | None
    database: str
    schema: str | None = None
    dropped_tables: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "path": self.path,
            "bytes": self.bytes,
            "engine": self.engine,
            "revision": self.revision,
            "database": self.database,
            "schema": self.schema,
            "dropped_tables": list(self.dropped_tables),
        }


def backup_database(url: str, destination: Path, *, force: bool = False) -> BackupReport:
    """Write a backup of the database at `url` to `destination` (0600)."""
    target = _destination(destination, force=force)
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_backup(url, target, force=force)
    return _pg_backup(url, target, force=force)


def restore_database(url: str, source: Path) -> BackupReport:
    """Replace the database at `url` with the backup in `source`."""
    source = source.expanduser().resolve()
    if not source.is_file():
        raise UsageError(f"no backup file at {source}")
    with source.open("rb") as handle:
        magic = handle.read(len(SQLITE_MAGIC))
    sqlite_url = make_url(url).get_backend_name() == "sqlite"
    if sqlite_url and magic.startswith(PG_DUMP_MAGIC):
        raise InvalidInput(f"{source} is a PostgreSQL backup, but DATABASE_URL is SQLite")
    if not sqlite_url and magic == SQLITE_MAGIC:
        raise InvalidInput(f"{source} is a SQLite backup, but DATABASE_URL is PostgreSQL")
    if sqlite_url:
        if magic != SQLITE_MAGIC:
            raise InvalidInput(f"{source} is not a SQLite database (nor a tcai backup)")
        return _sqlite_restore(url, source)
    return _pg_restore(url, source)


# ---- files ------------------------------------------------------------------------------


def _destination(destination: Path, *, force: bool) -> Path:
    target = destination.expanduser().resolve()
    if not target.parent.is_dir():
        raise UsageError(f"folder {target.parent} does not exist; create it first")
    if target.is_dir():
        raise UsageError(f"{target} is a folder; give a file name for the backup")
    if target.exists() and not force:
        raise Conflict(f"{target} already exists; pass --force to overwrite it")
    return target


@contextmanager
def _temp_beside(target: Path) -> Iterator[Path]:
    """An owner-only (0600, whatever the umask) empty file in `target`'s folder, removed
    unless the caller renamed it into place."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.fchmod(fd, 0o600)
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
    finally:
        temp.unlink(missing_ok=True)


def _place(temp: Path, target: Path, *, force: bool) -> None:
    """Rename `temp` to `target` durably; without `force` never over an existing file."""
    _fsync(temp)
    if force:
        os.replace(temp, target)
    else:
        try:
            os.link(temp, target)  # fails if the target appeared meanwhile
        except FileExistsError:
            raise Conflict(f"{target} already exists; pass --force to overwrite it") from None
        temp.unlink()
    _fsync_folder(target.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    with suppress(OSError):  # some filesystems cannot sync a folder
        _fsync(folder)


# ---- SQLite -----------------------------------------------------------------------------


def _sqlite_file(url: str) -> Path:
    path = sqlite_path(url)
    if path is None:
        raise ConfigError("an in-memory SQLite database cannot be backed up or restored")
    if not path.parent.is_dir():
        raise ConfigError(
            f"cannot open {describe_url(url)}: folder {path.parent} does not exist; "
            "create it or change DATABASE_URL"
        )
    return path


def _connect(path: Path, mode: str) -> sqlite3.Connection:
    """A plain sqlite3 connection; `mode` "ro" or "rw" never creates the file."""
    conn = sqlite3.connect(f"{path.as_uri()}?mode={mode}", uri=True, timeout=BUSY_TIMEOUT_S)
    conn.isolation_level = None
    return conn


def _sqlite_revision(conn: sqlite3.Connection) -> str | None:
    """The backup's schema revision; raises when it holds no tcai schema."""
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.DatabaseError:
        return _no_schema()
    return str(row[0]) if row else None


def _no_schema() -> str:
    raise InvalidInput(
        "the database holds no tcai schema (no alembic_version table); run `tcai db "
        "upgrade` first, or check DATABASE_URL"
    )


def _sqlite_backup(url: str, target: Path, *, force: bool) -> BackupReport:
    path = _sqlite_file(url)
    prepare_sqlite_file(url, create=False)  # a missing database: exit 2 naming the file
    if path == target:
        raise UsageError("the backup cannot be the database file itself")
    with _temp_beside(target) as temp:
        try:
            source = _connect(path, "rw")
            try:
                copy = _connect(temp, "rw")
                try:
                    source.backup(copy)  # one step: one consistent snapshot
                    copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                    revision = _sqlite_revision(copy)
                finally:
                    copy.close()
            finally:
                source.close()
        except sqlite3.DatabaseError as exc:
            raise DatabaseUnavailable(f"cannot back up {describe_url(url)}: {exc}") from None
        _place(temp, target, force=force)
    return BackupReport(
        "backup", str(target), target.stat().st_size, "sqlite", revision, describe_url(url)
    )


def _sqlite_restore(url: str, source: Path) -> BackupReport:
    path = _sqlite_file(url)
    if path == source:
        raise UsageError("the backup is the database file itself; nothing to restore")
    try:
        backup = _connect(source, "ro")
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(f"cannot read {source}: {exc}") from None
    try:
        try:
            check = backup.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError as exc:
            raise InvalidInput(f"{source} is not a readable SQLite database: {exc}") from None
        if check is None or check[0] != "ok":
            raise InvalidInput(f"{source} is damaged (quick_check: {check and check[0]})")
        try:
            revision = _sqlite_revision(backup)
        except InvalidInput:
            raise InvalidInput(
                f"{source} is not a tcai backup (no alembic_version table)"
            ) from None
        if path.exists():
            _sqlite_restore_into(backup, path, url)
        else:
            _sqlite_restore_new(backup, path)
    finally:
        backup.close()
    return BackupReport(
        "restore", str(source), source.stat().st_size, "sqlite", revision, describe_url(url)
    )


def _sqlite_restore_into(backup: sqlite3.Connection, path: Path, url: str) -> None:
    """Copy the backup into the existing database in one write transaction."""
    try:
        live = _connect(path, "rw")
    except sqlite3.DatabaseError as exc:
        raise DatabaseUnavailable(f"cannot open {describe_url(url)}: {exc}") from None
    try:
        backup.backup(live)
        live.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.DatabaseError as exc:
        raise DatabaseUnavailable(
            f"cannot restore into {describe_url(url)} ({exc}); stop every daemon and retry"
        ) from None
    finally:
        live.close()


def _sqlite_restore_new(backup: sqlite3.Connection, path: Path) -> None:
    """The database file is missing: build it beside, then rename it into place."""
    with _temp_beside(path) as temp:
        copy = _connect(temp, "rw")
        try:
            backup.backup(copy)
        finally:
            copy.close()
        for stale in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            stale.unlink(missing_ok=True)  # left by a deleted database, they belong to none
        _place(temp, path, force=False)


# ---- PostgreSQL -------------------------------------------------------------------------


@dataclass(frozen=True)
class PgTarget:
    """How the tools reach the database: a URL without password, and its environment."""

    uri: str
    env: dict[str, str]
    schema: str
    described: str


def pg_target(url: str) -> PgTarget:
    parsed = make_url(url)
    query = dict(parsed.query)
    options = query.get("options", "")
    options = options if isinstance(options, str) else " ".join(options)
    plain = URL.create(
        "postgresql",
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=parsed.query,
    )
    env = {**os.environ, "PGCONNECT_TIMEOUT": "5"}
    env.pop("PGPASSWORD", None)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    return PgTarget(
        uri=plain.render_as_string(hide_password=False),
        env=env,
        schema=url_schema(options),
        described=describe_url(url),
    )


_SEARCH_PATH = re.compile(r"(?:^|\s)-c\s*search_path\s*=\s*([^\s]+)")


def url_schema(options: str) -> str:
    """The schema tcai's tables live in: the first entry of a `-csearch_path=…` in the
    URL's `options` (as the tests' per-test schemas use), else `public`."""
    found = _SEARCH_PATH.search(options)
    if not found:
        return "public"
    first = found.group(1).split(",")[0].strip().strip('"')
    return first if first and first != "$user" else "public"


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ConfigError(f"{name} is not installed or not on PATH; {INSTALL_HINT}")
    return found


def _run(args: list[str], target: PgTarget, what: str) -> subprocess.CompletedProcess[bytes]:
    try:
        done = subprocess.run(
            args, env=target.env, capture_output=True, timeout=TOOL_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise TcaiError(f"{what} did not finish in {TOOL_TIMEOUT_S} s") from None
    return done


def tool_error(tool: str, stderr: str, target: PgTarget) -> TcaiError:
    """One actionable line for a failed pg_dump, pg_restore or psql."""
    text = stderr.strip()
    mismatch = re.search(
        r"server version:\s*([\d.]+\S*);\s*\S+ version:\s*([\d.]+\S*)", text, re.IGNORECASE
    )
    if "version mismatch" in text or mismatch:
        server, client = (mismatch.group(1), mismatch.group(2)) if mismatch else ("?", "?")
        major = server.split(".")[0]
        return ConfigError(
            f"{tool} {client} cannot work with the PostgreSQL {server} server at "
            f"{target.described}; install a client of version {major} or newer "
            f"(Debian/Ubuntu: apt-get install postgresql-client-{major}) and run again"
        )
    lines = [line for line in text.splitlines() if line.strip()]
    first = next((line for line in lines if "error" in line.lower()), lines[0] if lines else "")
    first = re.sub(r"^(pg_dump|pg_restore|psql)(:\s*error)?:\s*", "", first)[:300]
    lowered = text.lower()
    if "connection to server" in lowered or "could not connect" in lowered:
        return DatabaseUnavailable(
            f"cannot reach {target.described} ({first}); check DATABASE_URL and that the "
            "server is running"
        )
    return TcaiError(f"{tool} failed: {first}")


def _toc(archive: Path, target: PgTarget) -> list[str]:
    done = _run([_tool("pg_restore"), "--list", str(archive)], target, "pg_restore --list")
    if done.returncode != 0:
        stderr = done.stderr.decode(errors="replace")
        if "input file" in stderr or "does not appear to be a valid archive" in stderr:
            raise InvalidInput(f"{archive} is not a pg_dump custom-format archive")
        raise tool_error("pg_restore", stderr, target)
    return [
        line
        for line in done.stdout.decode(errors="replace").splitlines()
        if line and not line.startswith(";")
    ]


_TOC_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE (\S+) (\S+) ")


def _toc_tables(toc: list[str]) -> dict[str, set[str]]:
    tables: dict[str, set[str]] = {}
    for line in toc:
        found = _TOC_TABLE.match(line)
        if found:
            tables.setdefault(found.group(1), set()).add(found.group(2))
    return tables


def _archive_revision(archive: Path, target: PgTarget, schema: str) -> str | None:
    done = _run(
        [
            _tool("pg_restore"),
            "--data-only",
            f"--schema={schema}",
            "--table=alembic_version",
            "--file=-",
            str(archive),
        ],
        target,
        "pg_restore",
    )
    if done.returncode != 0:
        raise tool_error("pg_restore", done.stderr.decode(errors="replace"), target)
    lines = done.stdout.decode(errors="replace").splitlines()
    for index, line in enumerate(lines):
        if line.startswith("COPY ") and index + 1 < len(lines):
            value = lines[index + 1].strip()
            return None if value == "\\." else value
    return None


def _archive_schema(archive: Path, toc: list[str]) -> str:
    """The one schema of a tcai backup: the one holding its alembic_version table."""
    holders = [schema for schema, names in _toc_tables(toc).items() if "alembic_version" in names]
    if len(holders) != 1:
        raise InvalidInput(f"{archive} is not a tcai backup (no alembic_version table)")
    return holders[0]


def _pg_backup(url: str, target_path: Path, *, force: bool) -> BackupReport:
    pg_dump = _tool("pg_dump")
    _tool("pg_restore")  # to read the archive back, and to restore it one day
    target = pg_target(url)
    with _temp_beside(target_path) as temp:
        done = _run(
            [
                pg_dump,
                "--format=custom",
                f"--schema={target.schema}",
                f"--file={temp}",
                f"--dbname={target.uri}",
            ],
            target,
            "pg_dump",
        )
        if done.returncode != 0:
            raise tool_error("pg_dump", done.stderr.decode(errors="replace"), target)
        toc = _toc(temp, target)
        if "alembic_version" not in _toc_tables(toc).get(target.schema, set()):
            _no_schema()
        revision = _archive_revision(temp, target, target.schema)
        os.chmod(temp, 0o600)
        _place(temp, target_path, force=force)
    return BackupReport(
        "backup",
        str(target_path),
        target_path.stat().st_size,
        "postgresql",
        revision,
        target.described,
        schema=target.schema,
    )


def _pg_existing_tables(url: str, schema: str) -> set[str]:
    import sqlalchemy as sa

    from tcai.db.engine import check_connection, make_engine

    engine = make_engine(url)
    try:
        check_connection(engine)
        return set(sa.inspect(engine).get_table_names(schema=schema))
    finally:
        engine.dispose()


def _known_tables() -> set[str]:
    from sqlmodel import SQLModel

    import tcai.db.models  # noqa: F401  (registers every table)

    return {*SQLModel.metadata.tables, "alembic_version"}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _pg_restore(url: str, archive: Path) -> BackupReport:
    pg_restore, psql = _tool("pg_restore"), _tool("psql")
    target = pg_target(url)
    toc = _toc(archive, target)
    schema = _archive_schema(archive, toc)
    if schema != target.schema:
        raise InvalidInput(
            f"{archive} holds schema '{schema}', but DATABASE_URL uses schema "
            f"'{target.schema}'; restore into a URL with that schema"
        )
    revision = _archive_revision(archive, target, schema)
    backed_up = _toc_tables(toc).get(schema, set())
    extra = sorted(_pg_existing_tables(url, schema) - backed_up)
    unknown = [name for name in extra if name not in _known_tables()]
    if unknown:
        raise Conflict(
            f"schema '{schema}' holds tables that are neither in the backup nor tcai's: "
            f"{', '.join(unknown)}; move them elsewhere (or restore into an empty schema)"
        )
    prologue = [f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)};"]
    prologue += [f"DROP TABLE IF EXISTS {_quote(schema)}.{_quote(t)} CASCADE;" for t in extra]
    # The schema itself is not dropped and made again (its grants and any other objects
    # stay): its entries are left out of the list pg_restore works from.
    entries = [line for line in toc if " SCHEMA - " not in line]
    # The SQL goes to a file first: psql commits at the end of its input, so a
    # pg_restore that died half-way must never feed it a truncated script.
    with tempfile.TemporaryDirectory(prefix="tcai-restore-") as folder:
        listing, script = Path(folder) / "list", Path(folder) / "prologue.sql"
        sql = Path(folder) / "restore.sql"
        listing.write_text("\n".join(entries) + "\n", encoding="utf-8")
        script.write_text("\n".join(prologue) + "\n", encoding="utf-8")
        done = _run(
            [
                pg_restore,
                "--clean",
                "--if-exists",
                "--no-owner",
                f"--use-list={listing}",
                f"--file={sql}",
                str(archive),
            ],
            target,
            "pg_restore",
        )
        if done.returncode != 0:
            raise tool_error("pg_restore", done.stderr.decode(errors="replace"), target)
        done = _run(
            [
                psql,
                "--no-psqlrc",
                "--quiet",
                "--single-transaction",
                "--set=ON_ERROR_STOP=1",
                f"--file={script}",
                f"--file={sql}",
                f"--dbname={target.uri}",
            ],
            target,
            "psql",
        )
        if done.returncode != 0:
            raise tool_error("psql", done.stderr.decode(errors="replace"), target)
    return BackupReport(
        "restore",
        str(archive),
        archive.stat().st_size,
        "postgresql",
        revision,
        target.described,
        schema=schema,
        dropped_tables=tuple(extra),
    )
