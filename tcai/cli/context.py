"""Per-invocation state: settings, the database engine and the audit actor, built on
first use.

Commands that need neither (`--version`, `--help`, `templates suggest` on files) never
read the environment; those that do fail with one line per bad variable. Every change a
command makes is audited with `actor` (`cli:<operating-system user>`).

The settings, the ORM and the migration tool load on first use, not when this module is
imported (docs/cli.md, "Start-up: what a command imports").
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tcai.errors import MigrationRequired, UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from tcai.config import Settings

MAX_USER_NAME = 64


def os_actor() -> str:
    """`cli:<the operating-system user>` for the audit log, or `cli` when the user cannot
    be told (no LOGNAME/USER and no passwd entry, as in some containers)."""
    try:
        name = getpass.getuser()
    except (OSError, KeyError, ImportError):
        return "cli"
    cleaned = "".join(c for c in name if c.isprintable() and not c.isspace())[:MAX_USER_NAME]
    return f"cli:{cleaned}" if cleaned else "cli"


@dataclass
class CliState:
    env_file: Path = Path(".env")
    _settings: Settings | None = None
    _engine: Engine | None = field(default=None, repr=False)
    _actor: str | None = None

    @property
    def actor(self) -> str:
        """Who the audit log names for this command's changes, worked out once."""
        if self._actor is None:
            self._actor = os_actor()
        return self._actor

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from tcai.config import load_settings

            self._settings = load_settings(self.env_file)
        return self._settings

    def reload_settings(self) -> Settings:
        self._settings = None
        return self.settings

    def engine(self, *, check: bool = True, create: bool = False) -> Engine:
        """The configured database. Only `create=True` (`tcai init`, `tcai demo`, `tcai db
        upgrade`) may make a new SQLite file, owner-only (0600); any other command run
        in the wrong folder exits 2 naming the file it looked for, instead of creating
        an empty database and working on it (docs/cli.md)."""
        if self._engine is None:
            from tcai.db.engine import check_connection, make_engine, prepare_sqlite_file

            url = self.settings.database_url
            assert url is not None
            prepare_sqlite_file(url, create=create)
            self._engine = make_engine(url)
            if check:
                check_connection(self._engine)
        return self._engine

    def migrated_engine(self) -> Engine:
        """An engine whose schema is current; a clear error otherwise."""
        from tcai.db.migrate import get_status, refuse_unknown

        engine = self.engine()
        status = get_status(engine)
        refuse_unknown(status)
        if not status.up_to_date:
            where = "is empty" if status.current is None else "has an old schema"
            raise MigrationRequired(
                f"the database {where} ({len(status.pending)} migration(s) pending); "
                "run `tcai db upgrade` (or `tcai init`)"
            )
        return engine

    def public_url(self, url: str | None) -> str:
        """The daemon's public base URL: `url` (a `--url` option) or http://HOST:PORT."""
        settings = self.settings
        base = (url or f"http://{settings.host}:{settings.port}").rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise UsageError("--url must start with http:// or https://")
        return base

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
