"""Schema upgrades, downgrades and status, the only way the schema reaches a database.

Several processes may start an upgrade at once (a deploy on many machines, four CI jobs):
on PostgreSQL a transaction-scoped advisory lock makes them queue, and each then finds
the work done; on SQLite `BEGIN IMMEDIATE` does the same. A downgrade takes the same
lock and undoes revisions newest first, each with its own `downgrade()`; it is the run
book's rollback (docs/operations.md), so it is planned first (`plan_downgrade`) and the
CLI shows the plan before it runs it.

A database at a revision this code does not know (a newer tcai migrated it) is reported
as such (`MigrationStatus.unknown`) and never upgraded blindly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from tcai.db.engine import READ_ONLY, unavailable
from tcai.errors import InvalidInput, MigrationRequired, UsageError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
MIGRATION_LOCK_KEY = 7_310_001  # pg_advisory_xact_lock key owned by tcai migrations


@dataclass(frozen=True)
class MigrationStatus:
    current: str | None
    head: str
    pending: tuple[str, ...]

    @property
    def up_to_date(self) -> bool:
        return not self.pending

    @property
    def unknown(self) -> bool:
        """The database is at a revision this code does not ship (a newer tcai's)."""
        return self.current is not None and self.current not in revisions()


@dataclass(frozen=True)
class DowngradePlan:
    """What `downgrade` will undo: `steps` newest first, each (revision, title)."""

    current: str | None
    target: str | None
    steps: tuple[tuple[str, str], ...]


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


_REVISION = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(.+)$", re.MULTILINE)
_TITLE = re.compile(r'^\s*(?:"""|\'\'\')\s*(.*?)\s*$', re.MULTILINE)


def revisions() -> list[str]:
    """The shipped revisions, oldest first, read from the version files themselves.

    Every command checks the schema before it touches the database; reading two lines
    per file costs nothing, where loading alembic to ask costs 80 ms and 9 MB (its
    templating and highlighting come along). `upgrade` still runs alembic, and
    tests/db/test_migrations.py checks this chain against alembic's own."""
    parents: dict[str, str | None] = {}
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        found = dict(_REVISION.findall(path.read_text(encoding="utf-8")))
        revision = found.get("revision", "").strip().strip("'\"")
        if revision:
            parent = found.get("down_revision", "None").strip().strip("'\"")
            parents[revision] = None if parent == "None" else parent
    heads = set(parents) - {p for p in parents.values() if p is not None}
    assert len(heads) == 1, f"the migrations must form one chain; heads: {sorted(heads)}"
    chain: list[str] = []
    current: str | None = heads.pop()
    while current is not None:
        chain.append(current)
        current = parents[current]
    return chain[::-1]


def revision_titles() -> dict[str, str]:
    """Each shipped revision's title: the first line of its file's docstring."""
    titles: dict[str, str] = {}
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        found = dict(_REVISION.findall(text))
        revision = found.get("revision", "").strip().strip("'\"")
        title = _TITLE.search(text)
        if revision:
            titles[revision] = title.group(1) if title else ""
    return titles


def _current(conn: Connection) -> str | None:
    conn.execution_options(**{READ_ONLY: True})  # SQLite: a deferred BEGIN, no write lock
    try:
        with conn.begin():
            row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
    except (OperationalError, ProgrammingError) as exc:
        if "alembic_version" in str(exc):
            return None  # a database no upgrade has touched yet
        raise
    return str(row[0]) if row is not None else None


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def get_status(engine: Engine) -> MigrationStatus:
    chain = revisions()
    try:
        with engine.connect() as conn:
            current = _current(conn)
    except (OperationalError, DBAPIError) as exc:
        raise unavailable(_url(engine), exc) from None
    done = chain.index(current) + 1 if current in chain else 0
    return MigrationStatus(current=current, head=chain[-1], pending=tuple(chain[done:]))


def refuse_unknown(status: MigrationStatus) -> None:
    """A database migrated by a newer tcai: one line saying how to get back."""
    if status.unknown:
        raise MigrationRequired(
            f"the database is at revision {status.current}, which this version of tcai "
            f"does not know (it ships up to {status.head}): a newer tcai migrated it; "
            "downgrade it with that version (`tcai db downgrade`) or restore a backup"
        )


def upgrade(engine: Engine, revision: str = "head") -> MigrationStatus:
    """Bring the schema to `revision`; returns the status before the upgrade."""
    before = get_status(engine)
    refuse_unknown(before)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
            from alembic import command

            command.upgrade(alembic_config(conn), revision)
    except OperationalError as exc:
        raise unavailable(_url(engine), exc) from None
    return before


def plan_downgrade(engine: Engine, target: str) -> DowngradePlan:
    """What `downgrade(engine, target)` would undo. `target` is a shipped revision id,
    `base` (nothing left: every table dropped) or `-N` (N revisions back)."""
    status = get_status(engine)
    refuse_unknown(status)
    chain = revisions()
    if status.current is None:
        raise InvalidInput("the database has no tcai schema; there is nothing to downgrade")
    position = chain.index(status.current)
    wanted = target.strip()
    if wanted == "base":
        keep = 0
    elif re.fullmatch(r"-\d+", wanted):
        keep = position + 1 - int(wanted[1:])
        if keep < 0:
            raise UsageError(
                f"{wanted}: the database is only {position + 1} revision(s) above base"
            )
    elif wanted in chain:
        keep = chain.index(wanted) + 1
        if keep > position + 1:
            raise UsageError(
                f"{wanted} is newer than the database's {status.current}; "
                "use `tcai db upgrade` to go forward"
            )
    else:
        raise UsageError(f"unknown revision '{target}'; use one of {', '.join(chain)}, base or -1")
    titles = revision_titles()
    undo = chain[keep : position + 1][::-1]
    return DowngradePlan(
        current=status.current,
        target=chain[keep - 1] if keep else None,
        steps=tuple((rev, titles.get(rev, "")) for rev in undo),
    )


def downgrade(engine: Engine, revision: str) -> MigrationStatus:
    """Undo revisions down to `revision` (an id, `base` or `-N`, as `plan_downgrade`);
    returns the status before the downgrade."""
    before = get_status(engine)
    refuse_unknown(before)
    if re.fullmatch(r"-\d+", revision.strip()):
        plan = plan_downgrade(engine, revision)
        revision = plan.target or "base"
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
            from alembic import command

            command.downgrade(alembic_config(conn), revision)
    except OperationalError as exc:
        raise unavailable(_url(engine), exc) from None
    return before
