"""The one chat pipeline: every visitor message, from every door, goes here.

Text hygiene and validation → resolve the bot → crisis → kill switch → plan quota →
automations and office hours → answer (the LLM within the time budget, else the
business's facts) → contacts, lead and booking → persist (docs/chat-pipeline.md). The
daemon, `tcai chat` and `tcai templates smoke` all call `ChatEngine.handle`; streaming and
non-streaming differ only in the `on_chunk` callback.

Database work runs in a worker thread in two short transactions (before and after the
answer); nothing holds a connection while the LLM thinks. If the database is down, slow
or refuses the write, the visitor still gets an answer and their contact details go to
the spool before it leaves.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from tcai.bots.config import BotConfig
from tcai.chat import spool
from tcai.chat.automations import find_automation
from tcai.chat.booking import BookingDecision, decide_booking
from tcai.chat.crisis import CrisisDetector, CrisisMatch, crisis_response, is_spanish
from tcai.chat.directory import BotDirectory, CachedBot
from tcai.chat.facts import FactsAnswer, FactsBook
from tcai.chat.llm import STREAM_CAP_S, ChunkSink, LlmClient, LlmFailure, complete
from tcai.chat.prompt import build_system_prompt
from tcai.chat.replies import is_paused, limit_text, paused_text, quick_replies
from tcai.chat.rules import load_rules
from tcai.chat.spool import SpoolEntry, default_spool
from tcai.chat.store import (
    BookingRecord,
    TurnContext,
    TurnRecord,
    context_for,
    load_context,
    persist_turn,
)
from tcai.config import Settings
from tcai.db.engine import autocommit_scope, connection_scope
from tcai.db.types import utcnow
from tcai.errors import DatabaseUnavailable, InvalidMessage
from tcai.text.contacts import Contacts, display_phone, extract_contacts
from tcai.text.normalise import contains_phrase, join_sentences
from tcai.text.redact import redact_cards

log = logging.getLogger("tcai.chat")

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_MESSAGE_CHARS = 2000
PERSIST_ATTEMPTS = 2
PERSIST_ROOM_S = 1.0
"""Kept back from the LLM for the turn's write (a quarter of the budget when smaller):
when a crowd's LLM calls all time out together, their writes queue for the database."""
MIN_PERSIST_S = 0.3
"""The write's least window, for a streamed answer that flowed past the deadline."""
READ_TIMEOUT_S = 1.5
"""A first read slower than this is treated as a database outage for this turn."""
MIN_READ_S = 0.5
DB_RETRY_AFTER_S = 1.0
"""After a failed read, turns answer from memory this long before trying again."""
STREAM_STALL_S = 1.5
"""Past the deadline, a streamed answer must bring a chunk at least this often."""
_SURROGATES = re.compile("[\ud800-\udfff]")
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class ChatRequest:
    client_id: str
    bot_id: str
    message: str
    session_id: str | None = None
    visitor: str | None = None
    """Something that identifies the visitor's device (IP + user agent); stored hashed."""
    arrived: float | None = None
    """When the request arrived (`time.monotonic()`); the time budget counts from it."""
    bot: CachedBot | None = None
    """The bot, when the door already resolved it (the daemon does, to check the origin):
    a message resolves its bot once."""
    use_llm: bool = True
    """False when the bot's LLM budget for the moment is spent (the daemon's per-bot rate
    limit): the turn is answered from the business's facts, never refused."""
    canary: bool = False
    """A scripted check of the bot (`tcai.quality.canary`, docs/canaries.md): answered by
    the same pipeline, but it reserves no quota and writes nothing — no conversation,
    message, lead, usage, outbox row or spool entry."""


@dataclass
class ChatReply:
    reply: str
    session_id: str
    source: str
    actions: list[dict[str, Any]] = field(default_factory=list)
    lead_captured: bool = False
    quick_replies: list[dict[str, Any]] = field(default_factory=list)
    status: str = "ok"
    http_status: int = 200
    llm_failure: str | None = None
    """Why the LLM was not used when it should have been (metrics only; never shown)."""

    def as_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "reply": self.reply,
            "session_id": self.session_id,
            "source": self.source,
            "actions": self.actions,
            "lead_captured": self.lead_captured,
            "quick_replies": self.quick_replies,
        }
        if self.status != "ok":
            document["status"] = self.status
        return document


@dataclass(frozen=True)
class CompiledBot:
    """Everything derived from one config version, built once per process."""

    config: BotConfig
    system_prompt: str
    facts: FactsBook
    crisis: CrisisDetector


def compile_bot(config: BotConfig) -> CompiledBot:
    return CompiledBot(
        config=config,
        system_prompt=build_system_prompt(config),
        facts=FactsBook(config),
        crisis=CrisisDetector(config.crisis_keywords_all),
    )


class _DatabaseDown(Exception):
    """The turn's read could not be done in time or at all (the detail is in `str()`)."""


class ChatEngine:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        llm: LlmClient | None,
        *,
        spool_path: Path | None = None,
        clock: Callable[[], datetime] = utcnow,
        directory: BotDirectory | None = None,
        on_outbox: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.llm = llm
        self.spool_path = spool_path or default_spool(settings.log_dir)
        self.clock = clock
        self.directory = directory or BotDirectory(engine, compile_config=compile_bot)
        # The turn's database work runs on threads of its own: one for SQLite (one
        # connection, one writer: no waiting on the pool), four for PostgreSQL — each
        # turn's work is well under a millisecond there, and more threads than that
        # mostly fight over the GIL (eight cost ~15% more CPU per turn, measured with
        # bench/daemon_bench.py).
        workers = 1 if engine.dialect.name == "sqlite" else 4
        self._db = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tcai-db")
        # Spool writes get a thread of their own: during an outage every database thread
        # may be stuck, and the spool is what must not wait.
        self._spooler = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tcai-spool")
        self.on_outbox = on_outbox
        """Called (from the worker thread) after a turn queued webhook or e-mail rows."""
        self._db_down_until = 0.0
        """After a failed read, turns skip the read until then (monotonic seconds)."""
        self._baseline_crisis = CrisisDetector(())

    def close(self) -> None:
        self._db.shutdown(wait=True)
        self._spooler.shutdown(wait=True)

    # -- helpers --------------------------------------------------------------------------

    def _load(
        self, request: ChatRequest, session_id: str, now: datetime
    ) -> tuple[CachedBot, TurnContext]:
        rules = load_rules()
        cached = request.bot or self.directory.get(request.client_id, request.bot_id)
        cap, leads_cap = rules.plans.get(cached.plan, (None, None))
        for attempt in range(2):
            try:
                # The reservation is one atomic statement; the reads need no snapshot
                # in common with it (see `load_context`).
                with autocommit_scope(self.engine) as conn:
                    ctx = load_context(
                        conn,
                        cached,
                        session_id,
                        now,
                        message_cap=cap,
                        leads_cap=leads_cap,
                        reserve=not is_paused(cached) and not request.canary,
                    )
                return cached, ctx
            except DBAPIError as exc:
                # A pooled connection the server dropped (a restart): the pool has let it
                # go; one fresh try, without the ping every checkout would otherwise cost.
                if attempt or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    async def _resolve(
        self, request: ChatRequest, session_id: str, now: datetime, budget: Budget
    ) -> tuple[CachedBot | None, TurnContext | None]:
        """The bot and the turn's context; when the database is down or too slow, the
        bot's last known config and no context (the turn then goes on in facts mode)."""
        if time.monotonic() >= self._db_down_until:
            loop = asyncio.get_running_loop()
            work = loop.run_in_executor(self._db, self._load, request, session_id, now)
            work.add_done_callback(_retrieve)
            try:
                async with asyncio.timeout(budget.read_timeout()):
                    return await asyncio.shield(work)
            except (DatabaseUnavailable, SQLAlchemyError, TimeoutError) as exc:
                self._database_failed(f"chat for {request.client_id}/{request.bot_id}", exc)
        return request.bot or self.directory.last_known(request.client_id, request.bot_id), None

    def _database_failed(self, what: str, exc: BaseException) -> None:
        self._db_down_until = time.monotonic() + DB_RETRY_AFTER_S
        detail = "timed out" if isinstance(exc, TimeoutError) else _describe(exc)
        log.error("%s answers from memory: the database is unavailable (%s)", what, detail)

    async def resolve_bot(self, client_id: str, bot_id: str) -> CachedBot:
        """The bot for the daemon's own checks (origin, widget config): from the cache,
        else the database, else — while the database is down or slow — as last seen.
        Raises `DatabaseUnavailable` only for a bot this process has never seen."""
        fresh = self.directory.cached(client_id, bot_id)
        if fresh is not None:
            return fresh
        failure: BaseException | None = None
        if time.monotonic() >= self._db_down_until:
            loop = asyncio.get_running_loop()
            work = loop.run_in_executor(self._db, self.directory.get, client_id, bot_id)
            work.add_done_callback(_retrieve)
            try:
                async with asyncio.timeout(READ_TIMEOUT_S):
                    return await asyncio.shield(work)
            except (DatabaseUnavailable, SQLAlchemyError, TimeoutError) as exc:
                self._database_failed(f"{client_id}/{bot_id}", exc)
                failure = exc
        known = self.directory.last_known(client_id, bot_id)
        if known is None:
            raise DatabaseUnavailable(
                f"bot {bot_id} is not in memory and the database is unavailable"
                + (f" ({_describe(failure)})" if failure is not None else "")
            )
        return known

    def _persist(
        self, ctx: TurnContext, record: TurnRecord, spooled: threading.Event
    ) -> tuple[int | None, bool]:
        last_error = ""
        for attempt in range(PERSIST_ATTEMPTS):
            try:
                with connection_scope(self.engine) as conn:
                    result = persist_turn(conn, ctx, record)
                if result.queued and self.on_outbox is not None:
                    self.on_outbox()
                return result.lead_id, result.lead_created or result.lead_changed
            except (SQLAlchemyError, DatabaseUnavailable) as exc:
                last_error = _describe(exc)
                log.warning("persist attempt %d failed: %s", attempt + 1, last_error)
                if attempt + 1 < PERSIST_ATTEMPTS:
                    time.sleep(0.05 * (attempt + 1))
        log.error("turn of %s not stored (%s); contacts go to the spool", ctx.bot_id, last_error)
        if _has_contacts(record.contacts) and not spooled.is_set():
            spooled.set()
            self._spool(ctx.client_id, ctx.bot_id, record, last_error)
            return None, True
        return None, spooled.is_set()

    def _spool(self, client_id: str, bot_id: str, record: TurnRecord, error: str) -> None:
        spool.append(
            self.spool_path,
            SpoolEntry(
                spooled_at=record.now,
                client_id=client_id,
                bot_id=bot_id,
                session_id=record.session_id,
                contacts=asdict(record.contacts),
                message=record.user_text,
                reply=record.reply_text,
                source=record.source,
                priority=record.priority,
                error=error,
            ),
        )

    async def _store(
        self, request: ChatRequest, ctx: TurnContext | None, record: TurnRecord, budget: Budget
    ) -> bool:
        """Write the turn (or spool its contacts) before the reply leaves; returns
        whether the visitor's contact details are now safe (`lead_captured`).

        The write gets until the reply's deadline. If it is still running then, the
        contacts are spooled at once and the write goes on in the background (the spool
        import is idempotent), so a slow database never delays the reply."""
        spooled = threading.Event()
        loop = asyncio.get_running_loop()
        if ctx is None:
            if _has_contacts(record.contacts):
                spooled.set()
                await loop.run_in_executor(
                    self._spooler,
                    self._spool,
                    request.client_id,
                    request.bot_id,
                    record,
                    "database unavailable",
                )
            return spooled.is_set()
        work = loop.run_in_executor(self._db, self._persist, ctx, record, spooled)
        work.add_done_callback(_retrieve)
        try:
            async with asyncio.timeout(budget.persist_timeout()):
                _lead_id, captured = await asyncio.shield(work)
                return captured
        except TimeoutError:
            log.warning("turn of %s still being written at the deadline", ctx.bot_id)
            if _has_contacts(record.contacts) and not spooled.is_set():
                spooled.set()
                await loop.run_in_executor(
                    self._spooler, self._spool, ctx.client_id, ctx.bot_id, record, "write running"
                )
            return spooled.is_set()

    # -- the pipeline ---------------------------------------------------------------------

    async def handle(self, request: ChatRequest, on_chunk: ChunkSink | None = None) -> ChatReply:
        budget = Budget.start(self.settings, request.arrived)
        # 1. Validate. Text hygiene first (a lone surrogate or a NUL must not cost the
        # turn); history from clients is never accepted: the server keeps it.
        message = clean_text(request.message).strip() if isinstance(request.message, str) else ""
        if not 1 <= len(message) <= MAX_MESSAGE_CHARS:
            raise InvalidMessage(f"message must be 1 to {MAX_MESSAGE_CHARS} characters")
        # A leading letter: ids stay safe to paste as a CLI argument (never start with "-").
        session_id = request.session_id or "s" + secrets.token_urlsafe(16)
        if not SESSION_ID.fullmatch(session_id):
            raise InvalidMessage("session_id must be 8-64 characters of A-Z, a-z, 0-9, '_' or '-'")
        message = redact_cards(message)
        now = self.clock()
        rules = load_rules()

        # 2. Resolve (unknown → NotFound 404, suspended → Forbidden 403); from memory when
        # the database is down.
        cached, ctx = await self._resolve(request, session_id, now, budget)
        bot: CompiledBot | None = cached.compiled if cached is not None else None
        config = bot.config if bot is not None else None
        # Database down: the bot as last seen; usage unknown, so no quota is enforced.
        turn = ctx or (context_for(cached) if cached is not None else None)
        quick = quick_replies(config)
        contacts = extract_contacts(message)
        decision: BookingDecision | None = None
        failure: str | None = None
        status, http_status = "ok", 200

        # 3. Crisis first, whatever the bot's state: no LLM, a fixed caring answer, the
        # conversation flagged for review.
        match = (bot.crisis if bot is not None else self._baseline_crisis).detect(message)
        if match is not None:
            text, source = _crisis_text(config, message, match), "crisis"
            await _send(on_chunk, text)
        elif turn is None:
            # Never seen this bot and the database is down: say so kindly; keep contacts.
            text = join_sentences(
                rules.say("unavailable"),
                rules.say("details_saved") if _has_contacts(contacts) else "",
            )
            source, status, http_status = "failsafe", "unavailable", 503
        elif cached is not None and is_paused(cached):
            assert config is not None
            text = paused_text(config)
            source, status, http_status = "paused", "paused", 503
        elif ctx is not None and config is not None and _over_quota(ctx, canary=request.canary):
            text = limit_text(config)
            source, status, http_status = "limit", "limit_reached", 429
        else:
            assert bot is not None
            text, source, decision, failure = await self._answer(
                bot,
                turn,
                message,
                contacts,
                on_chunk,
                budget,
                degraded=ctx is None,
                use_llm=request.use_llm,
            )

        actions: list[dict[str, Any]] = []
        booking: BookingRecord | None = None
        if decision is not None:
            actions, booking = _booking_actions(decision)
        wants_follow_up = decision is not None or (turn is not None and turn.open_request_id)
        priority = (
            "urgent" if rules.is_urgent(message) else ("high" if wants_follow_up else "normal")
        )
        record = TurnRecord(
            session_id=session_id,
            visitor_hash=hashlib.sha256(request.visitor.encode()).hexdigest()
            if request.visitor
            else None,
            user_text=message,
            reply_text=text,
            source=source,
            latency_ms=int((time.monotonic() - budget.arrived) * 1000),
            contacts=contacts,
            priority=priority,
            crisis=match is not None,
            booking=booking,
            webhook_url=config.webhook_url if config is not None else None,
            notify_emails=(
                config.notify_emails if config is not None and self.settings.smtp_enabled else ()
            ),
            business_name=config.business.name if config is not None else None,
            now=now,
            counted=source not in ("paused", "limit"),
        )
        # A canary leaves no trace in the business's records (docs/canaries.md).
        captured = False if request.canary else await self._store(request, turn, record, budget)
        return ChatReply(
            text,
            session_id,
            source,
            actions=actions,
            lead_captured=captured,
            quick_replies=quick,
            status=status,
            http_status=http_status,
            llm_failure=failure,
        )

    async def _answer(
        self,
        bot: CompiledBot,
        ctx: TurnContext,
        message: str,
        contacts: Contacts,
        on_chunk: ChunkSink | None,
        budget: Budget,
        *,
        degraded: bool = False,
        use_llm: bool = True,
    ) -> tuple[str, str, BookingDecision | None, str | None]:
        config = bot.config
        rules = load_rules()
        wants_booking = rules.wants_booking(message)
        decision = decide_booking(config, message) if wants_booking else None
        known_phone = bool(contacts.phone or (ctx.lead and ctx.lead.phone))

        # 5. Automations and office hours.
        rule = find_automation(config.automations, message)
        if rule is not None:
            await _send(on_chunk, rule.reply)
            return rule.reply, "automation", decision, None
        prefix = ""
        if config.after_hours_message and config.business.is_open(self.clock()) is False:
            if config.after_hours_mode == "replace":
                text = config.after_hours_message
                if config.lead_capture and not known_phone:
                    text = join_sentences(text, rules.say("contact_ask"))
                await _send(on_chunk, text)
                return text, "automation", decision, None
            prefix = config.after_hours_message.strip() + "\n\n"
        ask_contact = (
            config.lead_capture
            and not known_phone
            and (wants_booking or any(_has(message, t) for t in config.lead_capture_triggers))
        )

        # 6. Answer: the LLM within its budget, else the business's facts.
        # With the database down the LLM would answer without the transcript: the facts
        # are the safer answer, and the fastest.
        if self.llm is not None and not degraded and use_llm:
            messages = [{"role": "system", "content": bot.system_prompt}]
            messages += [{"role": role, "content": text} for role, text in ctx.history]
            messages.append({"role": "user", "content": message})
            if prefix:
                await _send(on_chunk, prefix)
            try:
                answer = await complete(
                    self.llm,
                    model=self.settings.openai_model,
                    messages=messages,
                    budget_ms=int(budget.llm_remaining() * 1000),
                    on_chunk=on_chunk,
                    stream_deadline=budget.stream_deadline,
                    stall_s=STREAM_STALL_S,
                )
            except LlmFailure as failure:
                log.warning("LLM failed (%s); answering from facts", failure.kind)
                text = self._facts(bot, message, decision, ask_contact, known_phone, contacts).text
                if not failure.partial:
                    # Otherwise the visitor saw part of an answer: the `done` event's
                    # reply replaces it (the widget shows the reply it carries).
                    await _send(on_chunk, text)
                return prefix + text, "failsafe", decision, failure.kind
            text = answer.text
            contact_ask = rules.say("contact_ask")
            if ask_contact and contact_ask not in text:
                extra = f" {contact_ask}"
                await _send(on_chunk, extra if answer.streamed else "")
                text += extra
            if not answer.streamed:
                await _send(on_chunk, text)
            return prefix + text, "llm", decision, None

        facts = self._facts(bot, message, decision, ask_contact, known_phone, contacts)
        text = facts.text
        source = "faq" if facts.matched else "failsafe"
        phone = display_phone(config.business.phone)
        if degraded and phone and phone not in text:
            # While the database is down the phone is the one sure way to reach them.
            text = join_sentences(text, rules.say("reach_us", phone=phone))
        await _send(on_chunk, prefix + text)
        return prefix + text, source, decision, None

    def _facts(
        self,
        bot: CompiledBot,
        message: str,
        decision: BookingDecision | None,
        ask_contact: bool,
        known_phone: bool,
        contacts: Contacts | None = None,
    ) -> FactsAnswer:
        return bot.facts.answer(
            message,
            now=self.clock(),
            decision=decision,
            ask_contact=ask_contact,
            known_phone=known_phone,
            contacts=contacts,
        )


@dataclass(frozen=True)
class Budget:
    """The turn's time budget, counted from the request's arrival (docs/chat-pipeline.md).

    The reply leaves by `arrived + LLM_TIMEOUT_MS` (plus, at worst, one spool write); the
    LLM gets what is left of that minus `persist_room`, and the write what is left after
    the answer. A streamed answer may flow past the deadline while chunks keep coming,
    up to the stream cap."""

    arrived: float
    reply_deadline: float
    llm_deadline: float
    stream_deadline: float

    @classmethod
    def start(cls, settings: Settings, arrived: float | None = None) -> Budget:
        at = time.monotonic() if arrived is None else arrived
        total = settings.llm_timeout_ms / 1000
        room = min(PERSIST_ROOM_S, total / 4)
        # The request timeout is the hard ceiling; configuration keeps it a second above.
        cap = min(STREAM_CAP_S, settings.request_timeout_ms / 1000 - 1.0) - room
        return cls(at, at + total, at + total - room, at + max(cap, total - room))

    def read_timeout(self) -> float:
        """How long the first read may take before the turn goes on from memory: never
        less than `MIN_READ_S`, so a busy machine alone does not make an outage."""
        return max(MIN_READ_S, min(READ_TIMEOUT_S, self.llm_deadline - time.monotonic()))

    def llm_remaining(self) -> float:
        return max(0.0, self.llm_deadline - time.monotonic())

    def persist_timeout(self) -> float:
        return max(MIN_PERSIST_S, self.reply_deadline - time.monotonic())


def clean_text(text: str) -> str:
    """Text hygiene at the door: lone UTF-16 surrogates (a client that cut an emoji in
    half) become U+FFFD, NUL and other control characters but tab and newlines go, so
    no database, log or JSON encoder downstream can choke on the turn."""
    text = _SURROGATES.sub("\ufffd", text)
    return _CONTROLS.sub("", text)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a late result as seen (a read or write the turn stopped waiting for)."""
    if not future.cancelled():
        future.exception()


def _has_contacts(contacts: Contacts) -> bool:
    return bool(contacts.phone or contacts.email)


def _over_quota(ctx: TurnContext, *, canary: bool = False) -> bool:
    """The turn found no room in the month's quotas (`load_context` reserved none). A
    canary reserves nothing: it gets the limit reply exactly when a visitor would."""
    if canary:
        cap, _leads = load_rules().plans.get(ctx.plan, (None, None))
        return cap is not None and ctx.messages_this_month >= cap
    return not ctx.reserved


def _describe(exc: BaseException) -> str:
    """One line for the operator's log (never for a visitor)."""
    if isinstance(exc, DatabaseUnavailable):
        return exc.message
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"


def _booking_actions(
    decision: BookingDecision,
) -> tuple[list[dict[str, Any]], BookingRecord | None]:
    if decision.handling == "external" and decision.url:
        return [
            {
                "type": "booking_redirect",
                "url": decision.url,
                "label": decision.label,
                "provider": decision.provider,
            }
        ], None
    action = {
        "type": "booking_requested",
        "appointment_type": decision.appointment_type,
        "label": decision.label,
    }
    return [action], BookingRecord("internal", decision.appointment_type, service=decision.service)


def _crisis_text(config: BotConfig | None, message: str, match: CrisisMatch) -> str:
    """The bot's own crisis response for its own keywords, or when it covers the baseline's
    helplines (988); otherwise the platform's (English or Spanish)."""
    own = config.template.crisis if config is not None else None
    spanish = match.language == "es" or is_spanish(message)
    if own is not None and not spanish and (match.language == "bot" or "988" in own.response):
        return own.response
    return crisis_response(message, match)


def _has(message: str, phrase: str) -> bool:
    return contains_phrase(message, phrase)


async def _send(on_chunk: ChunkSink | None, text: str) -> None:
    if on_chunk is not None and text:
        await on_chunk(text)
