"""Per-invocation state: settings and the database engine, built on first use.

Commands that need neither (`--version`, `--help`, `templates suggest` on files) never
read the environment; those that do fail with one line per bad variable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer
from sqlalchemy.engine import Engine

from tcai.config import Settings, load_settings
from tcai.db.engine import check_connection, make_engine
from tcai.db.migrate import get_status
from tcai.errors import MigrationRequired


@dataclass
class CliState:
    env_file: Path = Path(".env")
    _settings: Settings | None = None
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.env_file)
        return self._settings

    def reload_settings(self) -> Settings:
        self._settings = None
        return self.settings

    def engine(self, *, check: bool = True) -> Engine:
        if self._engine is None:
            assert self.settings.database_url is not None
            self._engine = make_engine(self.settings.database_url)
            if check:
                check_connection(self._engine)
        return self._engine

    def migrated_engine(self) -> Engine:
        """An engine whose schema is current; a clear error otherwise."""
        engine = self.engine()
        status = get_status(engine)
        if not status.up_to_date:
            where = "is empty" if status.current is None else "has an old schema"
            raise MigrationRequired(
                f"the database {where} ({len(status.pending)} migration(s) pending); "
                "run `tcai db upgrade` (or `tcai init`)"
            )
        return engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def state(ctx: typer.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
        root.call_on_close(root.obj.close)
    return root.obj
