"""Schema upgrades and status, the only way the schema reaches a database.

Several processes may start an upgrade at once (a deploy on many machines, four CI jobs):
on PostgreSQL a transaction-scoped advisory lock makes them queue, and each then finds
the work done; on SQLite `BEGIN IMMEDIATE` does the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from tcai.db.engine import unavailable

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


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def _url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def get_status(engine: Engine) -> MigrationStatus:
    script = _script()
    head = script.get_current_head()
    assert head is not None, "no migrations shipped"
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except (OperationalError, DBAPIError) as exc:
        raise unavailable(_url(engine), exc) from None
    pending = tuple(
        rev.revision
        for rev in reversed(list(script.iterate_revisions(head, current or "base")))
        if rev.revision != current
    )
    return MigrationStatus(current=current, head=head, pending=pending)


def upgrade(engine: Engine, revision: str = "head") -> MigrationStatus:
    """Bring the schema to `revision`; returns the status before the upgrade."""
    before = get_status(engine)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
            command.upgrade(alembic_config(conn), revision)
    except OperationalError as exc:
        raise unavailable(_url(engine), exc) from None
    return before


def downgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        command.downgrade(alembic_config(conn), revision)
