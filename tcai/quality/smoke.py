"""`tcai templates smoke`: every template through the real provisioning and chat pipeline.

For each stored template a throw-away client is provisioned and scripted conversations
run through `ChatEngine` twice: offline (facts mode) and against the local stub LLM (a
real OpenAI-compatible server on 127.0.0.1, the real SDK). Checked: an FAQ answered, a
lead captured from "I'm Ana, 772-555-0142", the booking handling the template implies
(internal request via the pivot without a link; a redirect once an https link is set),
the disclaimer in the system prompt, the crisis reply, the failsafe when the LLM fails.
The throw-away clients are deleted afterwards, whatever happens.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Sequence

from sqlalchemy.engine import Engine
from sqlmodel import select

from tcai.bots.config import BotConfig
from tcai.bots.provisioning import ClientRequest, create_client
from tcai.bots.service import change_bot
from tcai.chat.llm import LlmClient
from tcai.chat.pipeline import ChatEngine, ChatReply, ChatRequest
from tcai.chat.prompt import build_system_prompt
from tcai.config import Settings
from tcai.db.engine import session_scope
from tcai.db.models import Bot, Lead, Workspace
from tcai.quality.checks import CheckReport
from tcai.quality.stub_llm import StubLLM
from tcai.records.tables import delete_workspace
from tcai.templates.providers import load_registry
from tcai.templates.schema import Template
from tcai.templates.store import stored_templates

LEAD_MESSAGE = "I'm Ana, 772-555-0142"
LEAD_PHONE = "+17725550142"
BOOK_MESSAGE = "I'd like to book an appointment"
CRISIS_MESSAGE = "I don't want to live anymore"
STUB_REPLY = "Thanks for asking! Here is what I can tell you."


def _sample_url(template: Template) -> str:
    """An https booking link on the template's default provider (or the business's site)."""
    registry = load_registry()
    provider = registry.get(template.booking.default_provider or "")
    host = provider.hosts[0] if provider and provider.hosts else "book.smoke-test.example"
    return f"https://{host}/smoke/{template.key}"


async def _say(
    engine: ChatEngine, client_id: str, bot_id: str, text: str, session: str | None = None
) -> ChatReply:
    return await engine.handle(ChatRequest(client_id, bot_id, text, session, "smoke"))


async def _smoke_one(
    report: CheckReport,
    settings: Settings,
    db: Engine,
    template: Template,
    stub: StubLLM,
    facts: ChatEngine,
    with_llm: ChatEngine,
) -> None:
    tid = template.id
    slug = f"smoke-{template.key.replace('_', '-')}-{secrets.token_hex(3)}"
    made = create_client(
        db,
        ClientRequest(
            template=template.id,
            slug=slug,
            name=f"Smoke {template.name}",
            phone="+1 772 555 0100",
            plan="enterprise",
        ),
        actor="smoke",
    )
    try:
        with session_scope(db) as session:
            bot = session.exec(select(Bot).where(Bot.bot_id == made.bot_id)).one()
            config = BotConfig.model_validate(bot.config)
        kept = config.template == template and config.template.booking == template.booking
        report.check(
            f"{tid}: provisioned bot keeps the template",
            kept,
            "booking profile, quick replies, disclaimer and crisis rules intact"
            if kept
            else "the bot's template snapshot differs from the stored template",
        )

        faq = template.faqs[0]
        answer = await _say(facts, slug, made.bot_id, faq.question)
        report.check(
            f"{tid}: FAQ answered offline",
            answer.source == "faq" and answer.reply.startswith(faq.answer[:40]),
            f"source {answer.source}: {answer.reply[:80]}",
        )

        lead_reply = await _say(facts, slug, made.bot_id, LEAD_MESSAGE)
        with session_scope(db) as session:
            ws = session.exec(select(Workspace).where(Workspace.slug == slug)).one()
            lead = session.exec(select(Lead).where(Lead.workspace_id == ws.id)).first()
        stored = lead is not None and lead.phone == LEAD_PHONE and lead.name == "Ana"
        report.check(
            f"{tid}: lead captured",
            lead_reply.lead_captured and stored,
            f"lead {lead.name if lead else None} {lead.phone if lead else None}",
        )

        booked = await _say(facts, slug, made.bot_id, BOOK_MESSAGE)
        kinds = [a["type"] for a in booked.actions]
        expected_type = "booking_requested"
        report.check(
            f"{tid}: booking without a link → internal request",
            kinds == [expected_type],
            f"actions {kinds}",
        )
        if template.booking.mode == "external":
            url = _sample_url(template)
            change_bot(db, made.bot_id, assignments=[f"booking_url={url}"], actor="smoke")
            facts.directory.invalidate(made.bot_id)  # our own change: no need to wait
            redirected = await _say(facts, slug, made.bot_id, BOOK_MESSAGE)
            action = redirected.actions[0] if redirected.actions else {}
            report.check(
                f"{tid}: booking with a link → https redirect",
                action.get("type") == "booking_redirect" and action.get("url") == url,
                f"actions {redirected.actions}",
            )

        with session_scope(db) as session:
            config = BotConfig.model_validate(
                session.exec(select(Bot).where(Bot.bot_id == made.bot_id)).one().config
            )
        prompt = build_system_prompt(config)
        report.check(f"{tid}: disclaimer in the system prompt", template.disclaimer.text in prompt)

        crisis = await _say(facts, slug, made.bot_id, CRISIS_MESSAGE)
        needed = ["988", "911"] + (["1-800-662-4357"] if template.key == "sober_living" else [])
        report.check(
            f"{tid}: crisis reply",
            crisis.source == "crisis" and all(n in crisis.reply for n in needed),
            f"source {crisis.source}",
        )

        stub.mode = "answer"
        before = len(stub.requests)
        answered = await _say(with_llm, slug, made.bot_id, faq.question)
        system = (
            stub.requests[before]["messages"][0]["content"] if len(stub.requests) > before else ""
        )
        report.check(
            f"{tid}: LLM answer with the bot's prompt",
            answered.source == "llm"
            and template.disclaimer.text in system
            and faq.answer in system,
            f"source {answered.source}",
        )
        stub.mode = "error"
        failed = await _say(with_llm, slug, made.bot_id, LEAD_MESSAGE.replace("Ana", "Bea"))
        report.check(
            f"{tid}: LLM failure → failsafe, lead kept",
            failed.source == "failsafe"
            and failed.lead_captured
            and "error" not in failed.reply.lower(),
            f"source {failed.source}",
        )
    finally:
        with session_scope(db) as session:
            ws_id = session.exec(select(Workspace.id).where(Workspace.slug == slug)).first()
            if ws_id is not None:
                delete_workspace(session, ws_id)


async def run_smoke(
    settings: Settings,
    db: Engine,
    *,
    only: Sequence[str] = (),
    on_progress: Callable[[str], None] | None = None,
) -> CheckReport:
    started = time.monotonic()
    report = CheckReport()
    with session_scope(db) as session:
        templates = [
            Template.model_validate(r.document) for r in stored_templates(session) if r.is_active
        ]
    if only:
        templates = [t for t in templates if t.key in only or t.id in only]
    if not templates:
        report.check("templates", False, "no templates stored; run `tcai templates seed`")
        return report
    chat_log = logging.getLogger("tcai.chat")
    saved_level = chat_log.level
    chat_log.setLevel(logging.ERROR)  # the failures smoke provokes on purpose are not news
    try:
        async with StubLLM(reply=STUB_REPLY) as stub:
            await _smoke_all(report, settings, db, templates, stub, on_progress)
    finally:
        chat_log.setLevel(saved_level)
    report.seconds = time.monotonic() - started
    return report


async def _smoke_all(
    report: CheckReport,
    settings: Settings,
    db: Engine,
    templates: list[Template],
    stub: StubLLM,
    on_progress: Callable[[str], None] | None,
) -> None:
    llm = LlmClient("smoke-test", stub.base_url)
    smoke_settings = settings.model_copy(update={"llm_timeout_ms": 3000})
    facts = ChatEngine(smoke_settings, db, None)
    with_llm = ChatEngine(smoke_settings, db, llm)
    try:
        for template in templates:
            try:
                await _smoke_one(report, smoke_settings, db, template, stub, facts, with_llm)
            except Exception as exc:  # one broken template must not hide the others
                report.check(f"{template.id}: smoke run", False, f"{type(exc).__name__}: {exc}")
            if on_progress:
                on_progress(template.id)
    finally:
        await llm.close()
        facts.close()
        with_llm.close()
