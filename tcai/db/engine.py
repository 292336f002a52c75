"""Engines and sessions for SQLite (the embedded default) and PostgreSQL.

SQLite gets WAL, `synchronous=NORMAL`, a busy timeout, foreign keys and `BEGIN IMMEDIATE`
for every transaction that may write: in WAL mode a deferred transaction that reads and
then writes fails with SQLITE_BUSY when another process committed in between, and no busy
timeout helps; taking the write lock up front makes concurrent CLI runs queue instead of
fail. A transaction that only reads, or whose first statement is its write (the chat
turn's read, docs/chat-pipeline.md), asks for a deferred `BEGIN` with
`session_scope(engine, read_only=True)`: readers never wait for each other or for a
writer in WAL mode, so several daemon processes do not serialise their reads.

No pre-ping round trip on every checkout: a pooled connection is pinged only when it has
sat idle for `PING_IDLE_S` (where a restarted server or a firewall drops connections);
a connection that fails in use is invalidated by SQLAlchemy, and the next checkout
connects afresh.
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.pool import QueuePool
from sqlmodel import Session

from tcai.errors import ConfigError, DatabaseUnavailable

SQLITE_BUSY_TIMEOUT_MS = 15_000
PG_CONNECT_TIMEOUT_S = 5
PING_IDLE_S = 10.0
"""A pooled connection idle longer than this is pinged before it is handed out."""
READ_ONLY = "tcai_read_only"
"""The execution option that asks SQLite for a deferred BEGIN (see the module doc)."""


def describe_url(url: str) -> str:
    """Where a database lives, for messages: host:port/db or the file path. No password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite file {parsed.database or ':memory:'}"
    host = parsed.host or "localhost"
    port = parsed.port or 5432
    return f"PostgreSQL at {host}:{port}/{parsed.database or ''}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see module doc)
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    read_only = conn.get_execution_options().get(READ_ONLY, False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _checked_in(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Pessimistic disconnect handling, for idle connections only: raising
    `DisconnectionError` makes the pool drop this connection and try another."""
    idle_since = record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < PING_IDLE_S:
        return
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        if not getattr(dbapi_connection, "autocommit", True):
            dbapi_connection.rollback()
    except Exception as exc:
        raise DisconnectionError(f"pooled connection is dead: {exc}") from exc


def make_engine(
    url: str, *, echo: bool = False, connect_timeout: int = PG_CONNECT_TIMEOUT_S
) -> Engine:
    """A sync engine for `url` (already normalised by the settings). `connect_timeout`
    bounds a PostgreSQL connect in seconds (libpq's minimum is 2; shell completion uses
    it, docs/cli.md)."""
    if make_url(url).get_backend_name() == "sqlite":
        path = sqlite_path(url)
        if path is not None and not path.parent.is_dir():
            raise DatabaseUnavailable(
                f"cannot open {describe_url(url)}: folder {path.parent} does not exist; "
                "create it or change DATABASE_URL"
            )
        # One connection per process: SQLite has one writer anyway, and queueing on the
        # pool is fair and immediate, where its busy handler sleeps up to 100 ms a try.
        engine = sa.create_engine(
            url,
            echo=echo,
            connect_args={"timeout": 15, "check_same_thread": False},
            poolclass=QueuePool,
            pool_size=1,
            max_overflow=0,
            pool_timeout=30,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = sa.create_engine(
        url,
        echo=echo,
        pool_timeout=5,
        connect_args={"connect_timeout": connect_timeout},
    )
    event.listen(engine, "checkin", _checked_in)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL and in-memory databases)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser().resolve()


def prepare_sqlite_file(url: str, *, create: bool) -> None:
    """Before a SQLite database is opened: a missing file is created only when `create`
    (owner-only, whatever the umask; SQLite gives its -wal and -shm files the same
    mode), and is otherwise a configuration error naming the file, never a silent new
    empty database."""
    path = sqlite_path(url)
    if path is None or path.exists() or not path.parent.is_dir():
        return  # (a missing folder: `make_engine` names it)
    if not create:
        raise ConfigError(
            f"no database at {path} (DATABASE_URL={url}); run `tcai init` where it should "
            "live, or point DATABASE_URL (or --env-file) at the existing one",
        )
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    os.chmod(path, 0o600)


def upsert_insert(dialect_name: str) -> Any:
    """The dialect's `insert` with `on_conflict_do_update` (PostgreSQL's or SQLite's),
    imported on first use: a daemon on SQLite never loads the PostgreSQL dialect."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def unavailable(url: str, exc: BaseException) -> DatabaseUnavailable:
    reason = str(getattr(exc, "orig", exc) or exc).strip().splitlines()
    first = reason[0] if reason else type(exc).__name__
    return DatabaseUnavailable(
        f"cannot reach {describe_url(url)} ({first}); check DATABASE_URL and that the "
        "server is running"
    )


def check_connection(engine: Engine) -> None:
    """Raise `DatabaseUnavailable` naming the host and port when the database is down."""
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except (OperationalError, DBAPIError) as exc:
        raise unavailable(engine.url.render_as_string(hide_password=True), exc) from None


_READ_ONLY_ENGINES: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def _read_only(engine: Engine) -> Engine:
    """The engine with the read-only option (built once per engine)."""
    found = _READ_ONLY_ENGINES.get(engine)
    if found is None:
        found = _READ_ONLY_ENGINES[engine] = engine.execution_options(**{READ_ONLY: True})
    return found


@contextmanager
def _connection_errors(engine: Engine) -> Iterator[None]:
    """A dropped or refused connection becomes `DatabaseUnavailable` naming the host (the
    same for every scope below); any other database error passes through."""
    try:
        yield
    except OperationalError as exc:
        if _is_connection_error(exc):
            raise unavailable(engine.url.render_as_string(hide_password=True), exc) from None
        raise


@contextmanager
def autocommit_scope(engine: Engine) -> Iterator[sa.Connection]:
    """A connection whose every statement is its own transaction: for work that is
    one atomic write and reads that need no common snapshot (the chat turn's read,
    docs/chat-pipeline.md). It saves PostgreSQL the BEGIN and COMMIT round trips. On
    SQLite the driver connection is always in autocommit (we issue BEGIN ourselves,
    see `_sqlite_pragmas`), so no transaction is begun at all."""
    with _connection_errors(engine), engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


@contextmanager
def connection_scope(engine: Engine, *, read_only: bool = False) -> Iterator[sa.Connection]:
    """One transaction on one connection, for Core statements (the chat turn's hot path):
    commits on success, rolls back on any error. `read_only` as for `session_scope`."""
    with _connection_errors(engine), (_read_only(engine) if read_only else engine).begin() as conn:
        yield conn


@contextmanager
def session_scope(engine: Engine, *, read_only: bool = False) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any error, always closes.

    `read_only`: the work only reads, or writes in its first statement (SQLite then
    begins deferred; see the module doc)."""
    try:
        session = Session(_read_only(engine) if read_only else engine, expire_on_commit=False)
    except OperationalError as exc:  # pragma: no cover - connect is lazy
        raise unavailable(str(engine.url), exc) from None
    try:
        with _connection_errors(engine):
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
    finally:
        session.close()


def _is_connection_error(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return any(
        marker in text
        for marker in ("connection", "could not connect", "unable to open", "timeout expired")
    )
