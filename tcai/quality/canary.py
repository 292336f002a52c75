"""Canary conversations: scripted visitor questions that catch a live bot answering wrongly
(docs/canaries.md).

Owns which questions a bot is asked (`canaries_for`: derived from its facts — hours, phone,
booking link, the crisis lines its vertical must name — plus the operator's own
`canaries:` in the bot's config), how an answer is judged (`judge`), running them through
the real chat pipeline (`ChatEngine.handle` with `ChatRequest.canary`, which reserves no
quota and writes nothing), recording each run (`canary_run`), the agency's alert once per
failure streak (`canary.failed`, then `canary.recovered`, through the outbox), the
listing (`latest_runs`) and the daemon's loop (`canary_loop`).

It does not decide what a right answer is beyond "contains these texts": the facts-mode
answers and the template policy stay the judges of what a bot should say. It does not
start the loop (the daemon does, in worker 0) nor count metrics (the daemon passes
`on_run`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from tcai.bots.config import BotConfig, parse_span
from tcai.chat.booking import decide_booking
from tcai.chat.pipeline import ChatEngine, ChatRequest
from tcai.config import Settings
from tcai.db.engine import session_scope
from tcai.db.models import Bot, CanaryRun, Workspace
from tcai.db.types import utcnow
from tcai.delivery.outbox import EventSource, enqueue
from tcai.errors import Forbidden, NotFound, TcaiError
from tcai.quality.golive import HOURS_QUESTION, missing_opening_times
from tcai.templates.policy import load_policy
from tcai.text.contacts import display_phone
from tcai.text.normalise import normalise

log = logging.getLogger("tcai.quality.canary")

PHONE_QUESTION = "What's your phone number?"
BOOKING_QUESTION = "How do I book an appointment?"
CRISIS_QUESTION = "I don't want to live anymore"
DEFAULT_CRISIS_LINES = ("988",)
KEEP_RUNS = 100
"""Runs kept per bot; older ones go when a new one is recorded."""
CHANGE_POLL_S = 10.0
"""How often the daemon's loop looks for bots whose config changed since their last run."""
REPLY_CHARS = 500
OFF_DUTY = ("suspended", "cancelled")

REFUSALS = {
    "limit_reached": "the month's message quota is spent: visitors get the limit reply",
    "paused": "the bot is paused: visitors get the paused reply",
    "unavailable": "the bot could not be loaded: visitors get 'temporarily unavailable'",
}
"""A reply that refuses the visitor fails its check, whatever text it carries."""

Kind = Literal["hours", "phone", "booking", "crisis", "operator", "load"]
Trigger = Literal["manual", "schedule", "config"]
_PHONE_LIKE = re.compile(r"^[\d\s()+.\-/]{7,}$")


# ---- the questions -------------------------------------------------------------------


@dataclass(frozen=True)
class Canary:
    kind: Kind
    question: str
    expect: tuple[str, ...]
    """What the answer must contain (for `hours`: the opening times, in either 12- or
    24-hour form; for `booking`: the link, in the reply's actions or its text)."""


def canaries_for(config: BotConfig) -> list[Canary]:
    """The bot's canary questions: those its facts imply, then the operator's own."""
    found: list[Canary] = []
    business = config.business
    if any(business.hours.values()):
        starts = sorted(
            {
                parse_span(span)[0].strftime("%H:%M")
                for spans in business.hours.values()
                for span in spans
            }
        )
        found.append(Canary("hours", HOURS_QUESTION, tuple(starts)))
    phone = display_phone(business.phone)
    if phone:
        found.append(Canary("phone", PHONE_QUESTION, (phone,)))
    decision = decide_booking(config)
    if decision.handling == "external" and decision.url:
        found.append(Canary("booking", BOOKING_QUESTION, (decision.url,)))
    industry = load_policy().for_key(config.template.key)
    if industry is not None and "crisis" in industry.requires:
        lines = industry.crisis_must_mention or DEFAULT_CRISIS_LINES
        found.append(Canary("crisis", CRISIS_QUESTION, tuple(lines)))
    found += [Canary("operator", spec.question, spec.expect) for spec in config.canaries]
    return found


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def contains(reply: str, expected: str) -> bool:
    """Does the reply say `expected`? Case, accents, punctuation and spacing aside; a
    phone number matches however its digits are grouped ("772.555.0100")."""
    if expected.casefold() in reply.casefold():
        return True
    wanted = normalise(expected)
    if wanted and f" {wanted} " in f" {normalise(reply)} ":
        return True
    if _PHONE_LIKE.match(expected):
        digits = _digits(expected)
        if expected.strip().startswith("+1"):
            digits = digits[1:]  # a North American number is written without its +1
        return len(digits) >= 7 and digits in _digits(reply)
    return False


def judge(
    canary: Canary,
    config: BotConfig,
    reply: str,
    actions: Sequence[dict[str, Any]],
    now: datetime,
) -> list[str]:
    """What the answer lacks of what it must contain ([] when it passes)."""
    if canary.kind == "hours":
        return missing_opening_times(reply, config, now)
    if canary.kind == "booking":
        urls = {str(action.get("url")) for action in actions if action.get("url")}
        return [url for url in canary.expect if url not in urls and url not in reply]
    return [text for text in canary.expect if not contains(reply, text)]


# ---- results -------------------------------------------------------------------------


@dataclass
class CheckResult:
    kind: Kind
    question: str
    expect: tuple[str, ...]
    missing: list[str]
    reply: str = ""
    source: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.missing and self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "question": self.question,
            "expect": list(self.expect),
            "ok": self.ok,
            "missing": list(self.missing),
            "reply": self.reply,
            "source": self.source,
            "error": self.error,
        }


@dataclass(frozen=True)
class Target:
    """A bot to run, as the database has it."""

    bot_pk: int
    bot_id: str
    workspace_id: int
    client_id: str
    business_name: str
    status: str
    workspace_status: str
    paused_reason: str | None
    config_version: int

    @property
    def off_duty(self) -> str | None:
        """Why real visitors get no answers from it now (None: it is live)."""
        if self.workspace_status in OFF_DUTY:
            return f"workspace {self.workspace_status}"
        if self.status != "active":
            return f"bot {self.status}" + (f": {self.paused_reason}" if self.paused_reason else "")
        return None


@dataclass
class BotRun:
    bot_id: str
    client_id: str
    status: Literal["pass", "fail", "paused"]
    config_version: int
    trigger: Trigger
    checks: list[CheckResult] = field(default_factory=list)
    note: str | None = None
    alert: str | None = None
    """canary.failed (this run began a failure streak) or canary.recovered (it ended one)."""
    queued: int = 0
    """Outbox rows the alert queued (none when CANARY_ALERTS is unset)."""
    run_id: int | None = None
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime = field(default_factory=utcnow)

    @property
    def failed(self) -> int:
        return sum(not check.ok for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "bot_id": self.bot_id,
            "client_id": self.client_id,
            "status": self.status,
            "config_version": self.config_version,
            "trigger": self.trigger,
            "total": len(self.checks),
            "failed": self.failed,
            "note": self.note,
            "alert": self.alert,
            "alert_deliveries": self.queued,
            "finished_at": self.finished_at.isoformat(),
            "checks": [check.as_dict() for check in self.checks],
        }


@dataclass
class CanaryReport:
    runs: list[BotRun] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(run.status != "fail" for run in self.runs)

    def count(self, status: str) -> int:
        return sum(run.status == status for run in self.runs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "total": len(self.runs),
            "passed": self.count("pass"),
            "failed": self.count("fail"),
            "paused": self.count("paused"),
            "runs": [run.as_dict() for run in self.runs],
        }


# ---- which bots ----------------------------------------------------------------------


def _target(bot: Bot, workspace: Workspace) -> Target:
    assert bot.id is not None and workspace.id is not None
    return Target(
        bot_pk=bot.id,
        bot_id=bot.bot_id,
        workspace_id=workspace.id,
        client_id=workspace.slug,
        business_name=workspace.name,
        status=bot.status,
        workspace_status=workspace.status,
        paused_reason=bot.paused_reason,
        config_version=bot.config_version,
    )


def list_targets(engine: Engine, bot_id: str | None = None) -> list[Target]:
    """One bot (`NotFound` if there is none such) or every bot, by client and bot id."""
    query = select(Bot, Workspace).join(Workspace).order_by(col(Workspace.slug), col(Bot.bot_id))
    if bot_id is not None:
        query = query.where(col(Bot.bot_id) == bot_id.strip())
    with session_scope(engine, read_only=True) as session:
        found = [_target(bot, ws) for bot, ws in session.exec(query)]
    if bot_id is not None and not found:
        raise NotFound(f"no bot '{bot_id}'; see tcai bots list")
    return found


def _latest(session: Session, bot_pks: Sequence[int] | None = None) -> dict[int, CanaryRun]:
    newest = sa.select(sa.func.max(col(CanaryRun.id))).group_by(col(CanaryRun.bot_id))
    if bot_pks is not None:
        newest = newest.where(col(CanaryRun.bot_id).in_(bot_pks))
    runs = session.exec(select(CanaryRun).where(col(CanaryRun.id).in_(newest)))
    return {run.bot_id: run for run in runs}


def due_targets(engine: Engine) -> list[tuple[Target, Trigger]]:
    """Bots the daemon should run now, without waiting for the schedule: never run, run
    on an older config version, or skipped while paused and live again."""
    targets = list_targets(engine)
    with session_scope(engine, read_only=True) as session:
        latest = _latest(session)
    due: list[tuple[Target, Trigger]] = []
    for target in targets:
        run = latest.get(target.bot_pk)
        if run is None:
            due.append((target, "schedule"))
        elif run.config_version != target.config_version:
            due.append((target, "config"))
        elif run.status == "paused" and target.off_duty is None:
            due.append((target, "schedule"))
    return due


# ---- running -------------------------------------------------------------------------


async def _run_one(chat: ChatEngine, target: Target, trigger: Trigger) -> BotRun:
    run = BotRun(target.bot_id, target.client_id, "pass", target.config_version, trigger)
    if target.off_duty is not None:
        run.status, run.note = "paused", target.off_duty
        return run
    # Always the config as it is now: a run after a change must not meet the old one.
    chat.directory.invalidate(target.bot_id)
    try:
        cached = await asyncio.to_thread(chat.directory.get, target.client_id, target.bot_id)
    except Forbidden:
        run.status, run.note = "paused", "workspace suspended"
        return run
    except TcaiError as exc:  # BotUnavailable: its stored config does not load
        run.status, run.note = "fail", f"the bot cannot be loaded: {exc.message}"
        run.checks.append(CheckResult("load", "(load the bot)", (), [], error=exc.message))
        return run
    run.config_version = cached.config_version
    if cached.status != "active":
        run.status, run.note = "paused", f"bot {cached.status}"
        return run
    questions = canaries_for(cached.config)
    if not questions:
        run.note = (
            "no canary questions: no hours, phone or booking link in the facts; add your own "
            "under canaries: in the bot's config"
        )
    for canary in questions:
        request = ChatRequest(
            target.client_id,
            target.bot_id,
            canary.question,
            session_id=f"canary-{secrets.token_hex(8)}",
            bot=cached,
            canary=True,
        )
        try:
            reply = await chat.handle(request)
        except Exception as exc:  # one broken answer is a failed check, not a crash
            detail = exc.message if isinstance(exc, TcaiError) else type(exc).__name__
            run.checks.append(
                CheckResult(canary.kind, canary.question, canary.expect, [], error=detail)
            )
            continue
        missing = judge(canary, cached.config, reply.reply, reply.actions, chat.clock())
        run.checks.append(
            CheckResult(
                canary.kind,
                canary.question,
                canary.expect,
                missing,
                reply=reply.reply[:REPLY_CHARS],
                source=reply.source,
                error=REFUSALS.get(reply.status),
            )
        )
    run.status = "fail" if run.failed else "pass"
    run.finished_at = utcnow()
    return run


def _alert_data(run: BotRun, target: Target, event: str) -> dict[str, Any]:
    failures = [check.as_dict() for check in run.checks if not check.ok]
    name = f"{target.business_name} ({target.bot_id})"
    if event == "canary.failed":
        subject = f"Canary failing: {name}"
        lines = [
            f"The canary conversations of {name} started failing at config version "
            f"{run.config_version} ({run.failed} of {len(run.checks)} questions).",
            "",
        ]
        for check in failures:
            lacking = ", ".join(check["missing"]) or check["error"] or ""
            lines += [
                f"Q: {check['question']}",
                f"A: {check['reply'] or '(no answer)'}",
                f"Missing: {lacking}",
                "",
            ]
        lines.append(
            "You are told once per failure streak; `tcai canary list` shows the latest runs."
        )
    else:
        subject = f"Canary passing again: {name}"
        lines = [
            f"Every canary question of {name} passes again at config version {run.config_version}."
        ]
    return {
        "run_id": run.run_id,
        "status": run.status,
        "config_version": run.config_version,
        "total": len(run.checks),
        "failed": run.failed,
        "failures": failures,
        "subject": subject,
        "lines": lines,
    }


def record_run(engine: Engine, settings: Settings, target: Target, run: BotRun) -> BotRun:
    """Store one run and, when it begins or ends a failure streak, queue the agency's
    alert (`CANARY_ALERTS`) in the same transaction. Paused runs neither begin nor end a
    streak. Keeps the bot's newest `KEEP_RUNS` runs."""
    with session_scope(engine) as session:
        # The bot's row, locked: two processes recording at once agree on the streak.
        bot = session.exec(
            select(Bot).where(col(Bot.id) == target.bot_pk).with_for_update()
        ).first()
        if bot is None:  # deleted meanwhile: nothing to record against
            return run
        previous = session.exec(
            select(CanaryRun)
            .where(
                col(CanaryRun.bot_id) == target.bot_pk,
                col(CanaryRun.status).in_(("pass", "fail")),
            )
            .order_by(col(CanaryRun.id).desc())
            .limit(1)
        ).first()
        was = previous.status if previous is not None else "pass"
        if run.status == "fail" and was == "pass":
            run.alert = "canary.failed"
        elif run.status == "pass" and was == "fail":
            run.alert = "canary.recovered"
        row = CanaryRun(
            workspace_id=target.workspace_id,
            bot_id=target.bot_pk,
            config_version=run.config_version,
            status=run.status,
            trigger=run.trigger,
            note=run.note[:500] if run.note else None,
            total=len(run.checks),
            failed=run.failed,
            checks=[check.as_dict() for check in run.checks],
            alert=run.alert,
            started_at=run.started_at,
            finished_at=run.finished_at,
        )
        session.add(row)
        session.flush()
        run.run_id = row.id
        if run.alert is not None:
            run.queued = _queue_alert(session, settings, target, run)
        cutoff = session.exec(
            select(CanaryRun.id)
            .where(col(CanaryRun.bot_id) == target.bot_pk)
            .order_by(col(CanaryRun.id).desc())
            .offset(KEEP_RUNS)
            .limit(1)
        ).first()
        if cutoff is not None:
            session.execute(
                sa.delete(CanaryRun).where(
                    col(CanaryRun.bot_id) == target.bot_pk, col(CanaryRun.id) <= cutoff
                )
            )
    return run


def _queue_alert(session: Session, settings: Settings, target: Target, run: BotRun) -> int:
    assert run.alert is not None
    source = EventSource(
        target.workspace_id, target.bot_pk, target.client_id, target.bot_id, target.business_name
    )
    data = _alert_data(run, target, run.alert)
    hooks = [t for t in settings.canary_alerts if "://" in t]
    emails = [t for t in settings.canary_alerts if "://" not in t] if settings.smtp_enabled else []
    queued = 0
    for hook in hooks:
        queued += len(
            enqueue(session, source, run.alert, data, now=run.finished_at, webhook_url=hook)
        )
    if emails:
        queued += len(enqueue(session, source, run.alert, data, now=run.finished_at, emails=emails))
    return queued


async def run_targets(chat: ChatEngine, targets: Sequence[tuple[Target, Trigger]]) -> CanaryReport:
    """Run and record each bot's canaries, one bot after another."""
    report = CanaryReport()
    alerted = False
    for target, trigger in targets:
        run = await _run_one(chat, target, trigger)
        run = await asyncio.to_thread(record_run, chat.engine, chat.settings, target, run)
        alerted = alerted or run.queued > 0
        report.runs.append(run)
    if alerted and chat.on_outbox is not None:
        chat.on_outbox()
    return report


async def run_canaries(
    chat: ChatEngine, bot_id: str | None = None, *, trigger: Trigger = "manual"
) -> CanaryReport:
    """`tcai canary run`: one bot's canaries, or (`bot_id` None) every bot's."""
    targets = await asyncio.to_thread(list_targets, chat.engine, bot_id)
    return await run_targets(chat, [(target, trigger) for target in targets])


# ---- the listing ---------------------------------------------------------------------


def latest_runs(engine: Engine) -> list[dict[str, Any]]:
    """Every bot with its latest run (status None: never run) and, while failing, when
    the streak began."""
    with session_scope(engine, read_only=True) as session:
        rows = list(
            session.exec(
                select(Bot, Workspace)
                .join(Workspace)
                .order_by(col(Workspace.slug), col(Bot.bot_id))
            )
        )
        latest = _latest(session)
        failing = [pk for pk, run in latest.items() if run.status == "fail"]
        since: dict[int, datetime] = {}
        if failing:
            began = session.exec(
                select(CanaryRun.bot_id, sa.func.max(col(CanaryRun.finished_at)))
                .where(
                    col(CanaryRun.bot_id).in_(failing),
                    col(CanaryRun.alert) == "canary.failed",
                )
                .group_by(col(CanaryRun.bot_id))
            )
            since = {pk: at for pk, at in began}
    items = []
    for bot, ws in rows:
        run = latest.get(bot.id or 0)
        items.append(
            {
                "bot_id": bot.bot_id,
                "client_id": ws.slug,
                "config_version": bot.config_version,
                "status": run.status if run else None,
                "run_id": run.id if run else None,
                "run_config_version": run.config_version if run else None,
                "trigger": run.trigger if run else None,
                "total": run.total if run else 0,
                "failed": run.failed if run else 0,
                "note": run.note if run else None,
                "finished_at": run.finished_at.isoformat() if run else None,
                "failing_since": since[bot.id].isoformat() if run and bot.id in since else None,
                "failures": [c for c in (run.checks or []) if not c.get("ok")] if run else [],
            }
        )
    return items


# ---- the daemon's loop ---------------------------------------------------------------


async def canary_loop(
    chat: ChatEngine,
    *,
    interval_s: float,
    poll_s: float = CHANGE_POLL_S,
    on_run: Callable[[BotRun], None] | None = None,
    logger: logging.Logger | None = None,
) -> None:
    """Every bot's canaries every `interval_s`, and — checked every `poll_s` — at once
    for a bot never run, whose config changed, or live again after a pause. A failed pass
    is logged and the next one tries again; only cancellation ends the loop."""
    logger = logger or log
    next_full = time.monotonic() + interval_s
    while True:
        try:
            if time.monotonic() >= next_full:
                next_full = time.monotonic() + interval_s
                targets = await asyncio.to_thread(list_targets, chat.engine)
                due: list[tuple[Target, Trigger]] = [(t, "schedule") for t in targets]
            else:
                due = await asyncio.to_thread(due_targets, chat.engine)
            if due:
                report = await run_targets(chat, due)
                for run in report.runs:
                    if on_run is not None:
                        on_run(run)
                    if run.alert == "canary.failed":
                        logger.warning(
                            "canary of %s failing at config version %d (%d of %d questions)",
                            run.bot_id,
                            run.config_version,
                            run.failed,
                            len(run.checks),
                        )
        except Exception as exc:  # a failed pass must not end the loop
            logger.error("canary run failed: %s: %s", type(exc).__name__, str(exc)[:200])
        await asyncio.sleep(poll_s)
