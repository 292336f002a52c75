"""The per-process cache of bots, and how every process learns a bot changed.

Each daemon process keeps the bots it serves (ids, status, plan, the compiled config) so
a chat turn does not re-read and re-parse the config. Three things keep the cache true,
so a kill switch or an edit reaches every process within two seconds:

- a cheap version check: at most every `check_interval` (a quarter of a second) the
  process reads the one `cache_signal` row every change bumps, inside the transaction it
  opens anyway, and flushes everything when it moved (all SQLite needs, and PostgreSQL's
  safety net); a process that makes a change itself calls `invalidate` at once;
- on PostgreSQL, LISTEN/NOTIFY: a change sends `pg_notify('tcai_bots', bot_id)` in its
  own transaction and the daemon's listener evicts that bot at once (see
  `tcai.daemon.listener`), flushing everything when it (re)connects;
- a TTL backstop on every entry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from tcai.bots.config import BotConfig
from tcai.bots.signal import BOTS_SIGNAL, FLUSH_ALL
from tcai.db.engine import session_scope
from tcai.db.models import Bot, CacheSignal, Workspace
from tcai.errors import BotUnavailable, Forbidden, NotFound

log = logging.getLogger("tcai.bots")


@dataclass(frozen=True)
class CachedBot:
    bot_pk: int
    bot_id: str
    workspace_id: int
    client_id: str
    workspace_status: str
    plan: str
    status: str
    config_version: int
    allowed_origins: tuple[str, ...]
    config: BotConfig
    compiled: Any
    loaded_at: float


class BotDirectory:
    def __init__(
        self,
        engine: Engine,
        *,
        compile_config: Callable[[BotConfig], Any] = lambda config: None,
        ttl: float = 30.0,
        check_interval: float = 0.25,
    ) -> None:
        self.engine = engine
        self.compile_config = compile_config
        self.ttl = ttl
        self.check_interval = check_interval
        self._entries: dict[str, CachedBot] = {}
        self._lock = threading.Lock()
        self._signal_version: int | None = None
        self._checked_at = 0.0
        self._broken: set[tuple[str, int]] = set()
        self._last_good: dict[str, CachedBot] = {}
        """Every bot's last successful load; survives `invalidate` (see `last_known`)."""

    # -- invalidation --------------------------------------------------------------------

    def invalidate(self, bot_id: str | None = None) -> None:
        with self._lock:
            if bot_id is None or bot_id == FLUSH_ALL:
                self._entries.clear()
            else:
                self._entries.pop(bot_id, None)

    def _check_signal(self, session: Session) -> None:
        now = time.monotonic()
        if now - self._checked_at < self.check_interval:
            return
        self._checked_at = now
        version = session.exec(
            select(CacheSignal.version).where(CacheSignal.name == BOTS_SIGNAL)
        ).first()
        if version != self._signal_version:
            if self._signal_version is not None or version is not None:
                self.invalidate()
            self._signal_version = version

    # -- look-up (call from a worker thread: it may touch the database) ------------------

    def cached(self, client_id: str, bot_id: str) -> CachedBot | None:
        """The bot from memory when its entry and the version check are fresh, else None
        (then `get` must read the database, from a worker thread)."""
        now = time.monotonic()
        entry = self._entries.get(bot_id)
        if (
            entry is None
            or now - entry.loaded_at >= self.ttl
            or now - self._checked_at >= self.check_interval
        ):
            return None
        return self._admit(entry, client_id)

    def _admit(self, entry: CachedBot, client_id: str) -> CachedBot:
        if entry.client_id != client_id:
            raise NotFound(f"no bot '{entry.bot_id}' for client '{client_id}'")
        if entry.workspace_status in ("suspended", "cancelled"):
            raise Forbidden(f"this assistant is not available ({entry.workspace_status})")
        return entry

    def last_known(self, client_id: str, bot_id: str) -> CachedBot | None:
        """The bot as this process last saw it, however old (None if never): what the
        chat engine answers from while the database is down."""
        entry = self._entries.get(bot_id) or self._last_good.get(bot_id)
        return self._admit(entry, client_id) if entry is not None else None

    def get(self, client_id: str, bot_id: str, session: Session | None = None) -> CachedBot:
        """The bot, from the cache when fresh. Pass the caller's session to share its
        transaction (the chat engine reads the bot and the turn's context in one)."""
        fresh = self.cached(client_id, bot_id)
        if fresh is not None:
            return fresh
        if session is None:
            with session_scope(self.engine, read_only=True) as own:
                return self.get(client_id, bot_id, own)
        self._check_signal(session)
        cached = self._entries.get(bot_id)
        if cached is not None and time.monotonic() - cached.loaded_at < self.ttl:
            entry = cached
        else:
            entry = self._load(session, bot_id)
        return self._admit(entry, client_id)

    def _load(self, session: Session, bot_id: str) -> CachedBot:
        row = session.exec(
            select(Bot, Workspace).join(Workspace).where(col(Bot.bot_id) == bot_id)
        ).first()
        if row is None:
            raise NotFound(f"no bot '{bot_id}'")
        bot, workspace = row
        assert bot.id is not None and workspace.id is not None
        previous = self._last_good.get(bot_id)
        version = bot.config_version
        if previous is not None and previous.config_version == version:
            config, compiled = previous.config, previous.compiled
        else:
            try:
                config = BotConfig.model_validate(bot.config)
                compiled = self.compile_config(config)
            except Exception as exc:  # a stored config this code cannot load
                if (bot_id, version) not in self._broken:
                    self._broken.add((bot_id, version))
                    log.error(
                        "bot %s: config version %d does not load (%s); %s",
                        bot_id,
                        version,
                        _first_line(exc),
                        f"serving version {previous.config_version}"
                        if previous is not None
                        else "its visitors get a 'temporarily unavailable' answer",
                    )
                if previous is None:
                    raise BotUnavailable("This assistant is temporarily unavailable.") from None
                config, compiled, version = (
                    previous.config,
                    previous.compiled,
                    previous.config_version,
                )
        entry = CachedBot(
            bot_pk=bot.id,
            bot_id=bot.bot_id,
            workspace_id=workspace.id,
            client_id=workspace.slug,
            workspace_status=workspace.status,
            plan=workspace.plan,
            status=bot.status,
            config_version=version,
            allowed_origins=tuple(bot.allowed_origins or ()),
            config=config,
            compiled=compiled,
            loaded_at=time.monotonic(),
        )
        with self._lock:
            self._entries[bot_id] = entry
            self._last_good[bot_id] = entry
        return entry


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
