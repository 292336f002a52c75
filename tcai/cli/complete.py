"""Shell completion's candidates from the database: bot ids, client ids, template ids.

A shell with tcai's completion installed runs `tcai` with `_TCAI_COMPLETE` set on every
Tab (docs/cli.md, "Shell completion"); typer and click complete the commands, groups and
options themselves, and the parameters that name a bot, a client or a template call a
function of this module (`autocompletion=`). Each one:

- reads the configuration the command itself would read (the environment, `.env`, or
  the `--env-file` typed before the command);
- opens the configured database without ever creating it (a missing SQLite file is no
  candidates, not a new empty database: `prepare_sqlite_file(create=False)`, as
  `CliState.engine` does for every command but `init`, `demo` and `db upgrade`);
- asks one core read for the candidates (`tcai.bots.service.bot_choices`,
  `client_choices`, `tcai.templates.store.template_choices`), each with a short
  description that zsh and fish show beside it;
- gives up quietly: a PostgreSQL connect waits `CONNECT_TIMEOUT_S`, the whole read at
  most `DEADLINE_S`, and any failure (bad configuration, no database, an old schema, a
  server that does not answer) means no candidates. Nothing is printed: a message or a
  traceback would land in the user's command line.

Only typer is imported at the top: the command modules attach these callbacks when they
load, and the settings, the ORM and the core load on the first Tab that needs them, so
`tcai --version`, `tcai --help` and every command's start-up pay nothing for completion
(tests/cli/test_startup.py).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

Choices = list[tuple[str, str]]
"""(value, description) pairs, as typer's `autocompletion=` takes them."""

CONNECT_TIMEOUT_S = 2
"""A PostgreSQL connect's limit in seconds (libpq will not wait less than 2)."""
DEADLINE_S = 3.0
"""The most a Tab waits for the database, whatever it is doing (a server that accepts
but never answers, a lock held by a migration)."""
LIMIT = 200
"""Candidates per Tab: more than a terminal shows usefully, few enough to stay quick."""


def _env_file(ctx: typer.Context) -> Path:
    """The root's `--env-file` when the user typed it before the command, else `.env`."""
    value = ctx.find_root().params.get("env_file")
    return Path(value) if value else Path(".env")


def _read(env_file: Path, lookup: Callable[[Engine], Choices]) -> Choices:
    from tcai.config import load_settings
    from tcai.db.engine import make_engine, prepare_sqlite_file

    url = load_settings(env_file).database_url
    if url is None:
        return []
    prepare_sqlite_file(url, create=False)  # a missing file raises; it is never made
    engine = make_engine(url, connect_timeout=CONNECT_TIMEOUT_S)
    try:
        return lookup(engine)
    finally:
        engine.dispose()


def candidates(ctx: typer.Context, lookup: Callable[[Engine], Choices]) -> Choices:
    """What `lookup` finds in the configured database; nothing on any error, and nothing
    if it takes longer than `DEADLINE_S` (the worker thread is abandoned: the completing
    process exits as soon as it has printed)."""
    env_file = _env_file(ctx)
    found: Choices = []

    def work() -> None:
        nonlocal found
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = _read(env_file, lookup)
        except Exception:  # no candidates is the only answer completion can give
            found = []

    worker = threading.Thread(target=work, name="tcai-completion", daemon=True)
    worker.start()
    worker.join(DEADLINE_S)
    return [] if worker.is_alive() else found


def bot_ids(ctx: typer.Context, incomplete: str) -> Choices:
    """Bot ids for a BOT argument or a `--bot` option."""

    def lookup(engine: Engine) -> Choices:
        from tcai.bots.service import bot_choices

        return bot_choices(engine, incomplete, limit=LIMIT)

    return candidates(ctx, lookup)


def client_ids(ctx: typer.Context, incomplete: str) -> Choices:
    """Client ids (workspace slugs) for `--workspace`/`-w`, `--client` and `clients` SLUG."""

    def lookup(engine: Engine) -> Choices:
        from tcai.bots.service import client_choices

        return client_choices(engine, incomplete, limit=LIMIT)

    return candidates(ctx, lookup)


def template_ids(ctx: typer.Context, incomplete: str) -> Choices:
    """Template keys and ids for `templates show` and `clients create --template`."""

    def lookup(engine: Engine) -> Choices:
        from tcai.templates.store import template_choices

        return template_choices(engine, incomplete, limit=LIMIT)

    return candidates(ctx, lookup)
