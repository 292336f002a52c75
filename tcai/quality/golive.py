"""`tcai bots check`: is a bot ready to go live? Blockers and warnings, each with its fix.

A *blocker* is something a visitor would hit: a booking link that is a placeholder, fails
the booking-URL judge or does not live on its claimed provider's domain; an external bot
with no usable booking link; no opening hours, or a facts-mode answer to "what are your
hours?" that does not give them; no phone; no street address for a walk-in business; no
widget origin for a live bot; a sensitive vertical without its crisis or compliance
rules; a suspended workspace; an LLM key that fails a real call. A *warning* is what a
demanding operator wants to know before the business does: no e-mail, website or lead
notifications, a template snapshot behind the stored template, a small plan, a quota
nearly spent, a bot that is not live.

Which verticals are walk-in or sensitive is data (`tcai/data/template_policy.yaml`); the
link rules are `tcai.templates.providers`'; the hours answer is `tcai.chat.facts.FactsBook`'s own.
`assess_bot` is pure (a config plus what the database says about the bot); `run_golive`
reads the database once and runs the LLM probe at most once for every bot it checks.
The pre-deployment checklist (`tcai.quality.checklist`) runs it on every live bot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from tcai.bots.config import WEEKDAYS, BotConfig, parse_span
from tcai.bots.links import booking_links
from tcai.templates.policy import load_policy
from tcai.templates.providers import load_registry

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from tcai.config import Settings
    from tcai.quality.llm_probe import LlmProbe

HOURS_QUESTION = "What are your hours?"
QUOTA_WARN_SHARE = 0.8
SUSPENDED = ("suspended", "cancelled")
Status = Literal["pass", "warn", "fail"]


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    fix: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "fix": self.fix}


@dataclass(frozen=True)
class BotRecord:
    """What the database says about a bot, beside its config."""

    bot_id: str
    client_id: str
    name: str
    template_id: str
    status: str
    workspace_status: str
    plan: str
    allowed_origins: tuple[str, ...] = ()
    paused_reason: str | None = None
    stored_template_version: str | None = None
    stored_template_active: bool = True
    messages_this_month: int = 0
    leads_this_month: int = 0

    @property
    def live(self) -> bool:
        """Serving real visitors: the bot and its workspace are both active."""
        return self.status == "active" and self.workspace_status == "active"


@dataclass(frozen=True)
class Platform:
    """Platform-wide inputs: settings that change what a bot needs, and the LLM probe."""

    widget_allowed_origins: tuple[str, ...] = ()
    production: bool = False
    smtp_enabled: bool = False
    llm: LlmProbe | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    plans: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)


@dataclass
class BotReadiness:
    record: BotRecord
    blockers: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.blockers

    @property
    def status(self) -> Status:
        return "fail" if self.blockers else ("warn" if self.warnings else "pass")

    def summary(self) -> str:
        def codes(findings: list[Finding]) -> str:
            return ", ".join(f.code for f in findings)

        if self.blockers:
            text = f"{len(self.blockers)} blocker(s): {codes(self.blockers)}"
            return text + (f"; {len(self.warnings)} warning(s)" if self.warnings else "")
        if self.warnings:
            return f"ready, {len(self.warnings)} warning(s): {codes(self.warnings)}"
        return "ready to go live"

    def as_dict(self) -> dict[str, Any]:
        r = self.record
        return {
            "bot_id": r.bot_id,
            "client_id": r.client_id,
            "name": r.name,
            "template_id": r.template_id,
            "status": r.status,
            "workspace_status": r.workspace_status,
            "live": r.live,
            "ok": self.ok,
            "blockers": [f.as_dict() for f in self.blockers],
            "warnings": [f.as_dict() for f in self.warnings],
        }


@dataclass
class GoLiveReport:
    bots: list[BotReadiness]
    llm: LlmProbe | None = None

    @property
    def ok(self) -> bool:
        return all(bot.ok for bot in self.bots)

    def count(self, status: Status) -> int:
        return sum(1 for bot in self.bots if bot.status == status)

    def as_dict(self) -> dict[str, Any]:
        """The checks JSON shape of docs/cli.md (a warning never counts as passed), plus
        per-bot detail."""
        return {
            "ok": self.ok,
            "total": len(self.bots),
            "passed": self.count("pass"),
            "failed": self.count("fail"),
            "warnings": self.count("warn"),
            "items": [
                {"name": bot.record.bot_id, "status": bot.status, "message": bot.summary()}
                for bot in self.bots
            ],
            "bots": [bot.as_dict() for bot in self.bots],
            "llm": self.llm.as_dict() if self.llm else None,
        }


# ---- the hours answer ----------------------------------------------------------------


def _time_forms(moment: time, whole_day: bool) -> list[str]:
    """Regexes for one opening time written the ways a reply may write it:
    24-hour ("09:00", "9:00"), 12-hour ("9 am", "9:00 a.m.", "9AM"), noon, midnight."""
    h, m = moment.hour, moment.minute
    h12 = h % 12 or 12
    half, other = ("a", "p") if h < 12 else ("p", "a")
    not_other = rf"(?!\s*{other}\.?\s*m\b)"
    forms = [rf"(?<!\d){h:02d}:{m:02d}(?!\d){not_other}"]
    if h < 10:
        forms.append(rf"(?<![\d:]){h}:{m:02d}(?!\d){not_other}")
    minutes = "" if m == 0 else f":{m:02d}"
    optional = rf"(?::{m:02d})?" if m == 0 else minutes
    forms.append(rf"(?<![\d:]){h12}{optional}\s*{half}\.?\s*m\b")
    if (h, m) == (12, 0):
        forms += [r"\bnoon\b", r"\bmidday\b"]
    if (h, m) == (0, 0):
        forms.append(r"\bmidnight\b")
    if whole_day:
        forms += [r"\b24\s*(?:hours|hrs|h)\b", r"\b24/7\b", r"\ball day\b", r"around the clock"]
    return forms


def _starts(spans: Iterable[str]) -> list[tuple[time, bool]]:
    found = []
    for span in spans:
        start, end = parse_span(span)
        found.append((start, start == time(0, 0) and end >= time(23, 59)))
    return found


def missing_opening_times(answer: str, config: BotConfig, now: datetime) -> list[str]:
    """The opening times `answer` does not mention ([] when it gives the hours).

    Enough: every day's start times, or — for a reply about today only — today's while
    today is not over, else the next open day's ("closed now; we open again Monday at
    9 am"). 12- and 24-hour forms both count."""
    hours = config.business.hours

    def absent(starts: list[tuple[time, bool]]) -> list[str]:
        return [
            moment.strftime("%H:%M")
            for moment, whole in starts
            if not any(
                re.search(form, answer, re.IGNORECASE) for form in _time_forms(moment, whole)
            )
        ]

    every_day = sorted(set(_starts(span for spans in hours.values() for span in spans)))
    missing = absent(every_day)
    if not missing:
        return []
    local = now.astimezone(ZoneInfo(config.business.timezone))
    today = hours.get(WEEKDAYS[local.weekday()], ())
    if today and local.time() < max(parse_span(span)[1] for span in today):
        day_spans = today
    else:  # closed today, or closed for the day: the reply names the next opening
        upcoming = (WEEKDAYS[(local + timedelta(days=n)).weekday()] for n in range(1, 8))
        day_spans = next((hours[day] for day in upcoming if hours.get(day)), ())
    if day_spans and not absent(_starts(day_spans)):
        return []
    return missing


# ---- one bot ---------------------------------------------------------------------------


def _booking_findings(
    config: BotConfig, bot: str, blockers: list[Finding], warnings: list[Finding]
) -> None:
    from tcai.chat.booking import decide_booking

    registry = load_registry()
    booking = config.template.booking
    provider_name = config.booking.provider
    provider = registry.get(provider_name) if provider_name else None
    if provider_name and provider is None:
        blockers.append(
            Finding(
                "booking_provider_unknown",
                f"booking provider '{provider_name}' is not a known provider",
                f"tcai bots set {bot} booking_provider=<one of: "
                f"{', '.join(booking.providers) or 'Direct Booking'}>",
            )
        )
        return
    if booking.mode != "external":
        return
    where_hint = (
        f"a link on {provider.domains_text()}"
        if provider and provider.hosts
        else "the business's booking page"
    )
    links = booking_links(config)
    decision = decide_booking(config)
    pivot = (
        "; until it is fixed every booking request becomes a callback request"
        if decision.handling != "external"
        else ""
    )
    own_main_link_blocked = False
    for link in links:
        if link.from_template or link.usable:
            continue
        if link.verdict.ok:
            code, problem = "booking_link_placeholder", f"{link.setting} is still a placeholder"
        else:
            code, problem = (
                "booking_link_invalid",
                f"{link.setting} is refused: it {link.verdict.reason}",
            )
        main = link.setting == "booking_url"
        own_main_link_blocked = own_main_link_blocked or main
        blockers.append(
            Finding(
                code,
                f"{problem} ({link.url}){pivot if main else ''}",
                f"tcai bots set {bot} '{link.setting}=https://…' ({where_hint})"
                + (", or set booking_provider to the link's provider" if provider else ""),
            )
        )
    unusable = [link for link in links if link.from_template and not link.usable]
    if decision.handling != "external":
        if not own_main_link_blocked:
            blockers.append(
                Finding(
                    "no_booking_link",
                    f"booking is external ({booking.primary_cta}) but no usable booking link "
                    "is set, so every booking request becomes a callback request"
                    + (
                        f"; the template's {len(unusable)} link(s) cannot be used"
                        if unusable
                        else ""
                    ),
                    f"tcai bots set {bot} booking_url=https://… ({where_hint})",
                )
            )
        return
    for link in unusable:
        if link.overridden:
            continue
        problem = "a placeholder" if link.verdict.ok else f"refused ({link.verdict.reason})"
        setting = f"service_url.{link.service}" if link.service else "booking_url"
        warnings.append(
            Finding(
                "template_link_unusable",
                f"{link.where} carries the template's link, which is {problem}; visitors who "
                f"ask for it are sent to {decision.url}",
                f"tcai bots set {bot} '{setting}=https://…' for a direct link",
            )
        )
    if provider and provider.hosts and provider.name not in booking.providers:
        warnings.append(
            Finding(
                "provider_not_listed",
                f"booking provider {provider.name} is not one of the template's providers "
                f"({', '.join(booking.providers)})",
                "check it is the business's real booking system",
            )
        )


def _hours_findings(
    config: BotConfig, bot: str, platform: Platform, blockers: list[Finding]
) -> None:
    from tcai.chat.facts import FactsBook

    hours = config.business.hours
    set_hours = f"tcai bots set {bot} hours.mon=09:00-17:00 … hours.sun=closed"
    if not hours:
        blockers.append(
            Finding(
                "no_hours",
                "no opening hours: the bot cannot say when the business is open",
                set_hours,
            )
        )
        return
    if not any(hours.values()):
        blockers.append(
            Finding(
                "no_open_hours",
                "the hours say closed every day: every reply gets the after-hours message",
                set_hours,
            )
        )
        return
    try:
        answer = FactsBook(config).answer(HOURS_QUESTION, now=platform.now).text
    except Exception as exc:  # a broken facts answer is a finding, not a crash
        blockers.append(
            Finding(
                "hours_answer",
                f"the facts-mode answer to '{HOURS_QUESTION}' failed: {type(exc).__name__}",
                f"tcai chat {bot} --message '{HOURS_QUESTION}'",
            )
        )
        return
    missing = missing_opening_times(answer, config, platform.now)
    if missing:
        shown = answer if len(answer) <= 160 else answer[:157] + "…"
        blockers.append(
            Finding(
                "hours_answer",
                f"asked '{HOURS_QUESTION}', the bot (facts mode) does not give the opening "
                f'times ({", ".join(missing)} missing): "{shown}"',
                f"check the bot's FAQs for an hours answer that hides them: tcai chat {bot} "
                f"--message '{HOURS_QUESTION}'",
            )
        )


def _contact_findings(
    config: BotConfig, record: BotRecord, blockers: list[Finding], warnings: list[Finding]
) -> None:
    b, bot = config.business, record.bot_id
    industry = load_policy().for_key(config.template.key)
    if not b.phone:
        blockers.append(
            Finding(
                "no_phone",
                "no phone number: the bot cannot hand a visitor to a person, nor say so "
                "when paused",
                f"tcai bots set {bot} phone=+1…",
            )
        )
    walk_in = industry is not None and industry.walk_in
    if walk_in and not b.address:
        blockers.append(
            Finding(
                "no_address",
                f"no address for a walk-in business ({config.template.key}): visitors ask "
                "where it is",
                f"tcai bots set {bot} 'address=12 Main St, Town, ST 00000'",
            )
        )
    elif walk_in and b.address and not any(ch.isdigit() for ch in b.address):
        warnings.append(
            Finding(
                "address_not_street",
                f"the address '{b.address}' has no street number; walk-in visitors need one",
                f"tcai bots set {bot} 'address=12 Main St, Town, ST 00000'",
            )
        )
    if not b.email:
        warnings.append(
            Finding(
                "no_email",
                "no e-mail address for the business",
                f"tcai bots set {bot} email=owner@business-domain",
            )
        )
    if not b.website:
        warnings.append(
            Finding(
                "no_website",
                "no website: the bot cannot point visitors to it",
                f"tcai bots set {bot} website=https://…",
            )
        )


def _delivery_findings(
    config: BotConfig, bot: str, platform: Platform, warnings: list[Finding]
) -> None:
    if not config.webhook_url and not config.notify_emails:
        warnings.append(
            Finding(
                "no_notifications",
                "no webhook and no notify_emails: new leads are only seen in tcai",
                f"tcai bots set {bot} notify_emails=owner@business-domain (or webhook_url=https://…)",
            )
        )
    if config.notify_emails and not platform.smtp_enabled:
        warnings.append(
            Finding(
                "email_not_sent",
                "notify_emails is set but SMTP_HOST is not: no lead e-mail will be sent",
                "set SMTP_HOST and SMTP_FROM in the environment",
            )
        )
    if config.webhook_url and not config.webhook_secret:
        warnings.append(
            Finding(
                "webhook_unsigned",
                "the webhook has no secret: the receiver cannot verify X-TCAI-Signature",
                f"tcai bots set {bot} webhook_secret=<16+ random characters>",
            )
        )


def _origin_findings(
    record: BotRecord, platform: Platform, blockers: list[Finding], warnings: list[Finding]
) -> None:
    bot = record.bot_id
    origins = (*record.allowed_origins, *platform.widget_allowed_origins)
    fix = f"tcai bots set {bot} allowed_origins=https://www.business-domain"
    if not origins:
        finding = Finding(
            "no_allowed_origins",
            "no allowed origins: the widget is refused on the business's own site",
            fix,
        )
        (blockers if record.live else warnings).append(finding)
    for origin in record.allowed_origins:
        local = "://localhost" in origin or "://127.0.0.1" in origin
        if origin.startswith("http://") and not local:
            warnings.append(
                Finding(
                    "insecure_origin",
                    f"allowed origin {origin} is plain http: the widget's traffic is not "
                    "encrypted there",
                    fix,
                )
            )
        elif local and platform.production:
            warnings.append(
                Finding(
                    "local_origin",
                    f"allowed origin {origin} is a local address on a production deployment",
                    fix,
                )
            )


def _rules_findings(config: BotConfig, blockers: list[Finding]) -> None:
    industry = load_policy().for_key(config.template.key)
    if industry is None:
        return
    template = config.template
    reprovision = "re-seed the templates and provision the bot again from the current template"
    if "crisis" in industry.requires:
        if template.crisis is None or not template.crisis.keywords:
            blockers.append(
                Finding(
                    "missing_crisis_rules",
                    f"{template.key} bots must carry crisis rules with their own keywords",
                    reprovision,
                )
            )
        else:
            missing = [n for n in industry.crisis_must_mention if n not in template.crisis.response]
            if missing:
                blockers.append(
                    Finding(
                        "crisis_helplines_missing",
                        f"the crisis response does not name {', '.join(missing)}",
                        reprovision,
                    )
                )
    elif industry.sensitive and template.crisis is None and template.compliance is None:
        blockers.append(
            Finding(
                "missing_crisis_rules",
                f"{template.key} is a sensitive vertical but the bot carries neither crisis "
                "nor compliance rules",
                reprovision,
            )
        )
    if "compliance" in industry.requires and template.compliance is None:
        blockers.append(
            Finding(
                "missing_compliance_rules",
                f"{template.key} bots must carry compliance rules",
                reprovision,
            )
        )


def _status_findings(
    config: BotConfig,
    record: BotRecord,
    platform: Platform,
    blockers: list[Finding],
    warnings: list[Finding],
) -> None:
    bot = record.bot_id
    if record.workspace_status in SUSPENDED:
        blockers.append(
            Finding(
                "workspace_suspended",
                f"the workspace is {record.workspace_status}: every chat is refused",
                f"make workspace '{record.client_id}' active again",
            )
        )
    elif not record.live:
        state = (
            f"bot {record.status}"
            + (f" ({record.paused_reason})" if record.paused_reason else "")
            + f", workspace {record.workspace_status}"
        )
        warnings.append(
            Finding(
                "not_live",
                f"not serving real visitors yet: {state}",
                f"tcai bots resume {bot} once the blockers are fixed"
                if record.status != "active"
                else "make the workspace active when the business goes live",
            )
        )
    snapshot = config.template.version
    if record.stored_template_version is None or not record.stored_template_active:
        warnings.append(
            Finding(
                "template_missing",
                f"template {record.template_id} is no longer active; the bot keeps its "
                f"snapshot (v{snapshot})",
                "tcai templates list",
            )
        )
    elif _version(record.stored_template_version) > _version(snapshot):
        warnings.append(
            Finding(
                "template_outdated",
                f"the bot uses template v{snapshot}; v{record.stored_template_version} is stored",
                f"compare with tcai templates show {record.template_id}; provision again to "
                "take the new version",
            )
        )
    messages, leads = platform.plans.get(record.plan, (None, None))
    if record.plan == "free":
        warnings.append(
            Finding(
                "plan_free",
                f"free plan: {messages} messages and {leads} leads a month, then visitors "
                "get a limit reply",
                "move the workspace to a paid plan",
            )
        )
    for label, used, limit in (
        ("messages", record.messages_this_month, messages),
        ("leads", record.leads_this_month, leads),
    ):
        if limit and used >= QUOTA_WARN_SHARE * limit:
            warnings.append(
                Finding(
                    "quota_near",
                    f"{used} of {limit} {label} this month used",
                    "move the workspace to a larger plan",
                )
            )


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return ()


def assess_bot(config: BotConfig, record: BotRecord, platform: Platform) -> BotReadiness:
    """Every go-live rule for one bot."""
    readiness = BotReadiness(record)
    blockers, warnings = readiness.blockers, readiness.warnings
    bot = record.bot_id
    _status_findings(config, record, platform, blockers, warnings)
    _booking_findings(config, bot, blockers, warnings)
    _hours_findings(config, bot, platform, blockers)
    _contact_findings(config, record, blockers, warnings)
    _origin_findings(record, platform, blockers, warnings)
    _rules_findings(config, blockers)
    _delivery_findings(config, bot, platform, warnings)
    if platform.llm is not None and not platform.llm.ok:
        blockers.append(
            Finding(
                "llm_failed",
                f"the configured LLM fails a real call: {platform.llm.message}",
                "tcai llm check; fix the OPENAI_* settings, or unset OPENAI_API_KEY to "
                "answer in facts mode",
            )
        )
    return readiness


def _unreadable(record: BotRecord, error: Exception) -> BotReadiness:
    first = (str(error).splitlines() or [type(error).__name__])[0]
    return BotReadiness(
        record,
        blockers=[
            Finding(
                "config_invalid",
                f"the stored config does not load: {first[:200]}",
                f"tcai bots show {record.bot_id}; fix it with tcai bots set {record.bot_id} "
                "--file patch.yaml",
            )
        ],
    )


# ---- the database side -----------------------------------------------------------------


def run_golive(
    engine: Engine,
    settings: Settings,
    bot_id: str | None = None,
    *,
    live_only: bool = False,
    now: datetime | None = None,
) -> GoLiveReport:
    """Check one bot (`bot_id`), every bot, or every live bot (`live_only`)."""
    from sqlmodel import col, select

    from tcai.bots.service import get_bot
    from tcai.chat.rules import load_rules
    from tcai.db.engine import session_scope
    from tcai.db.models import Bot, BotTemplate, Usage, Workspace

    moment = now or datetime.now(UTC)
    month = moment.astimezone(UTC).strftime("%Y-%m")
    with session_scope(engine) as session:
        if bot_id is not None:
            rows = [get_bot(session, bot_id)]
        else:
            query = (
                select(Bot, Workspace)
                .join(Workspace)
                .order_by(col(Workspace.slug), col(Bot.bot_id))
            )
            rows = [(bot, ws) for bot, ws in session.exec(query)]
        templates = {
            t.template_id: (t.version, t.is_active) for t in session.exec(select(BotTemplate))
        }
        usage: dict[int | None, tuple[int, int]] = {
            u.workspace_id: (u.messages, u.leads)
            for u in session.exec(select(Usage).where(Usage.month == month))
        }
        records = [
            (
                BotRecord(
                    bot_id=bot.bot_id,
                    client_id=ws.slug,
                    name=bot.name,
                    template_id=bot.template_id,
                    status=bot.status,
                    workspace_status=ws.status,
                    plan=ws.plan,
                    allowed_origins=tuple(bot.allowed_origins or ()),
                    paused_reason=bot.paused_reason,
                    stored_template_version=templates.get(bot.template_id, (None, False))[0],
                    stored_template_active=templates.get(bot.template_id, (None, False))[1],
                    messages_this_month=usage.get(ws.id, (0, 0))[0],
                    leads_this_month=usage.get(ws.id, (0, 0))[1],
                ),
                dict(bot.config),
            )
            for bot, ws in rows
        ]
    if live_only:
        records = [(record, document) for record, document in records if record.live]
    llm = None
    if records and settings.openai_api_key is not None:
        from tcai.quality.llm_probe import probe_llm

        llm = probe_llm(settings)
    platform = Platform(
        widget_allowed_origins=tuple(settings.widget_allowed_origins),
        production=settings.is_production,
        smtp_enabled=settings.smtp_enabled,
        llm=llm,
        now=moment,
        plans=load_rules().plans,
    )
    report = GoLiveReport([], llm)
    for record, document in records:
        try:
            config = BotConfig.model_validate(document)
        except ValueError as exc:
            report.bots.append(_unreadable(record, exc))
            continue
        report.bots.append(assess_bot(config, record, platform))
    return report
