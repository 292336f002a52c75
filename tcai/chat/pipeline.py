"""The one chat pipeline (SPEC §6): every visitor message, from every door, goes here.

validate → resolve the bot → plan limits → crisis → automations and office hours →
answer (LLM within its budget, else the business's facts) → contacts, lead and booking →
persist. The daemon, `tcai chat` and `tcai templates smoke` all call `ChatEngine.handle`;
streaming and non-streaming differ only in the `on_chunk` callback.

Database work runs in a worker thread in two short transactions (before and after the
answer); nothing holds a connection while the LLM thinks. If the write after the answer
fails twice, the visitor still gets the reply and any contact details go to the spool.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from tcai.bots.config import BotConfig
from tcai.bots.directory import BotDirectory, CachedBot
from tcai.chat.automations import find_automation
from tcai.chat.booking import BookingDecision, decide_booking
from tcai.chat.contacts import Contacts, display_phone, extract_contacts
from tcai.chat.crisis import CrisisDetector, CrisisMatch, crisis_response, is_spanish
from tcai.chat.facts import FactsAnswer, FactsBook
from tcai.chat.llm import ChunkSink, LlmFailure, complete
from tcai.chat.prompt import build_system_prompt
from tcai.chat.rules import load_rules
from tcai.chat.store import (
    BookingRecord,
    TurnContext,
    TurnRecord,
    load_context,
    persist_turn,
    spool_lead,
)
from tcai.chat.text import contains_phrase
from tcai.config import Settings
from tcai.db.engine import session_scope
from tcai.db.types import utcnow
from tcai.errors import InvalidMessage
from tcai.redact import redact_cards

log = logging.getLogger("tcai.chat")

SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_MESSAGE_CHARS = 2000
PERSIST_ATTEMPTS = 2


@dataclass(frozen=True)
class ChatRequest:
    client_id: str
    bot_id: str
    message: str
    session_id: str | None = None
    visitor: str | None = None
    """Something that identifies the visitor's device (IP + user agent); stored hashed."""


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


class ChatEngine:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        llm: AsyncOpenAI | None,
        *,
        spool_path: Path | None = None,
        clock: Callable[[], datetime] = utcnow,
        directory: BotDirectory | None = None,
        on_outbox: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.llm = llm
        self.spool_path = spool_path or Path(settings.log_dir) / "lead-spool.jsonl"
        self.clock = clock
        self.directory = directory or BotDirectory(engine, compile_config=compile_bot)
        # The turn's database work runs on threads of its own: one for SQLite (one
        # connection, one writer: no waiting on the pool), a pool's worth for PostgreSQL.
        workers = 1 if engine.dialect.name == "sqlite" else 8
        self._db = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tcai-db")
        self.on_outbox = on_outbox
        """Called (from the worker thread) after a turn queued webhook or e-mail rows."""

    def close(self) -> None:
        self._db.shutdown(wait=True)

    # -- helpers --------------------------------------------------------------------------

    def _load(
        self, request: ChatRequest, session_id: str, now: datetime
    ) -> tuple[CachedBot, TurnContext]:
        with session_scope(self.engine) as session:
            cached = self.directory.get(request.client_id, request.bot_id, session)
            return cached, load_context(session, cached, session_id, now)

    def _persist(self, ctx: TurnContext, record: TurnRecord) -> tuple[int | None, bool]:
        last_error = ""
        for attempt in range(PERSIST_ATTEMPTS):
            try:
                with session_scope(self.engine) as session:
                    result = persist_turn(session, ctx, record)
                if result.queued and self.on_outbox is not None:
                    self.on_outbox()
                return result.lead_id, result.lead_created or result.lead_changed
            except SQLAlchemyError as exc:
                last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                log.warning("persist attempt %d failed: %s", attempt + 1, last_error)
                time.sleep(0.05 * (attempt + 1))
        if record.contacts.phone or record.contacts.email:
            spool_lead(self.spool_path, ctx, record, last_error)
            return None, True
        return None, False

    # -- the pipeline ---------------------------------------------------------------------

    async def handle(self, request: ChatRequest, on_chunk: ChunkSink | None = None) -> ChatReply:
        started = time.monotonic()
        # 1. Validate. History from clients is never accepted: the server keeps it.
        message = request.message.strip() if isinstance(request.message, str) else ""
        if not 1 <= len(message) <= MAX_MESSAGE_CHARS:
            raise InvalidMessage(f"message must be 1 to {MAX_MESSAGE_CHARS} characters")
        # A leading letter: ids stay safe to paste as a CLI argument (never start with "-").
        session_id = request.session_id or "s" + secrets.token_urlsafe(16)
        if not SESSION_ID.match(session_id):
            raise InvalidMessage("session_id must be 8-64 characters of A-Z, a-z, 0-9, '_' or '-'")
        message = redact_cards(message)
        now = self.clock()

        # 2. Resolve (unknown → NotFound 404, suspended → Forbidden 403).
        loop = asyncio.get_running_loop()
        cached, ctx = await loop.run_in_executor(self._db, self._load, request, session_id, now)
        bot: CompiledBot = cached.compiled
        config = bot.config
        quick = [{"id": q.id, "label": q.label, "prompt": q.prompt} for q in config.quick_replies]
        rules = load_rules()
        reach = rules.say("reach_us", phone=display_phone(config.business.phone))

        def reply(text: str, source: str, **extra: Any) -> ChatReply:
            return ChatReply(text, session_id, source, quick_replies=quick, **extra)

        if ctx.bot_status != "active" or ctx.workspace_status == "paused":
            text = _join(rules.say("paused", name=config.business.name), reach)
            return reply(text, "paused", status="paused", http_status=503)

        # 3. Plan limits.
        messages_cap, leads_cap = rules.plans.get(ctx.plan, (None, None))
        if (messages_cap is not None and ctx.messages_this_month >= messages_cap) or (
            leads_cap is not None and ctx.leads_this_month >= leads_cap
        ):
            text = _join(rules.say("limit"), reach or rules.say("contact_directly"))
            return reply(text, "limit", status="limit_reached", http_status=429)

        contacts = extract_contacts(message)
        decision: BookingDecision | None = None
        failure: str | None = None
        crisis = False
        # 4. Crisis: no LLM, a fixed caring answer, the conversation flagged for review.
        match = bot.crisis.detect(message)
        if match is not None:
            crisis = True
            text = _crisis_text(config, message, match)
            source = "crisis"
            await _send(on_chunk, text)
        else:
            text, source, decision, failure = await self._answer(
                bot, ctx, message, contacts, on_chunk
            )

        booking: BookingRecord | None = None
        actions: list[dict[str, Any]] = []
        if decision is not None:
            if decision.handling == "external" and decision.url:
                actions.append(
                    {
                        "type": "booking_redirect",
                        "url": decision.url,
                        "label": decision.label,
                        "provider": decision.provider,
                    }
                )
            else:
                actions.append(
                    {
                        "type": "booking_requested",
                        "appointment_type": decision.appointment_type,
                        "label": decision.label,
                    }
                )
                booking = BookingRecord(
                    "internal", decision.appointment_type, service=decision.service
                )

        wants_follow_up = decision is not None or ctx.open_request_id is not None
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
            latency_ms=int((time.monotonic() - started) * 1000),
            contacts=contacts,
            priority=priority,
            crisis=crisis,
            booking=booking,
            webhook_url=config.webhook_url,
            notify_emails=config.notify_emails if self.settings.smtp_enabled else (),
            business_name=config.business.name,
            now=now,
        )
        _lead_id, captured = await loop.run_in_executor(self._db, self._persist, ctx, record)
        return reply(text, source, actions=actions, lead_captured=captured, llm_failure=failure)

    async def _answer(
        self,
        bot: CompiledBot,
        ctx: TurnContext,
        message: str,
        contacts: Contacts,
        on_chunk: ChunkSink | None,
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
                    text = _join(text, rules.say("contact_ask"))
                await _send(on_chunk, text)
                return text, "automation", decision, None
            prefix = config.after_hours_message.strip() + "\n\n"
        ask_contact = (
            config.lead_capture
            and not known_phone
            and (wants_booking or any(_has(message, t) for t in config.lead_capture_triggers))
        )

        # 6. Answer: the LLM within its budget, else the business's facts.
        if self.llm is not None:
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
                    budget_ms=self.settings.llm_timeout_ms,
                    on_chunk=on_chunk,
                )
            except LlmFailure as failure:
                log.warning("LLM failed (%s); answering from facts", failure.kind)
                text = self._facts(bot, message, decision, ask_contact, known_phone, contacts).text
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


def _join(*parts: str) -> str:
    return " ".join(part.strip() for part in parts if part and part.strip())


def _crisis_text(config: BotConfig, message: str, match: CrisisMatch) -> str:
    """The bot's own crisis response for its own keywords, or when it covers the baseline's
    helplines (988); otherwise the platform's (English or Spanish)."""
    own = config.template.crisis
    spanish = match.language == "es" or is_spanish(message)
    if own is not None and not spanish and (match.language == "bot" or "988" in own.response):
        return own.response
    return crisis_response(message, match)


def _has(message: str, phrase: str) -> bool:
    return contains_phrase(message, phrase)


async def _send(on_chunk: ChunkSink | None, text: str) -> None:
    if on_chunk is not None and text:
        await on_chunk(text)
