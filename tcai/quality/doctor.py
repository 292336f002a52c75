"""`tcai doctor`: the run book's troubleshooting as one report (docs/cli.md, "tcai doctor").

For a bot: is it active, is its workspace, would the widget load from an origin (the
token, the CORS and frame-ancestors values, the embed script and the config over HTTP
from the running daemon), does the LLM answer or will facts mode, is the outbox
delivering, are leads arriving, what does the daemon's health say, which origins the
daemon refused lately. For a user: disabled or invited, locked out and until when, the
last login. Each finding is ok, warn or fail, one line of what and one line of the fix, a
command that does what it says.

This module owns the findings and the reads they need (the database, the daemon's JSON
log lines). It does not own the origin rule or the headers the daemon derives from it
(those are the daemon's, `tcai/daemon/origins.py`; the CLI passes them in as a
`WidgetRule`, since the core sits below the daemon), the HTTP requests to the running
daemon (a `DaemonGet`, passed in), nor the LLM call (`tcai.quality.llm_probe`, the same
probe as `tcai llm check`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlsplit

import sqlalchemy as sa
from sqlmodel import Session, col, select

from tcai.access.users import account_email
from tcai.bots.clients import is_paused_by_suspension
from tcai.bots.service import get_bot
from tcai.db.engine import session_scope
from tcai.db.models import Conversation, Lead, Lockout, Outbox, User, UserInvite, Workspace
from tcai.db.types import utcnow
from tcai.delivery.outbox import outbox_summary

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from tcai.config import Settings
    from tcai.quality.llm_probe import LlmProbe

Status = Literal["ok", "warn", "fail"]
REFUSED_EVENT = "widget origin refused"
"""The daemon's log line for a refused widget origin (tcai/daemon/origins.py)."""
LOG_FILES = ("tcai.jsonl", "tcai.w*.jsonl")
"""The daemon's application logs in LOG_DIR: worker 0's, then each other worker's
(tcai/daemon/app.py names them)."""
LOG_TAIL_BYTES = 2 * 1024 * 1024
"""How much of the end of each log file is read for refused origins."""
REFUSALS_WINDOW = timedelta(hours=24)
RECENT = timedelta(days=7)
DEAD_SHOWN = 3
SERVING = ("active", "demo")


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    message: str
    fix: str | None = None
    """One command line (with a few words of when) that mends it; None when ok."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "status": self.status,
            "message": self.message,
            "fix": self.fix,
        }


@dataclass
class DoctorReport:
    findings: list[Finding] = field(default_factory=list)
    subject: dict[str, Any] = field(default_factory=dict)
    """What was examined: bot_id, client_id, origin, user, daemon_url."""

    @property
    def ok(self) -> bool:
        return not any(f.status == "fail" for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        counts = {s: sum(f.status == s for f in self.findings) for s in ("ok", "warn", "fail")}
        return {
            "ok": self.ok,
            **self.subject,
            "counts": counts,
            "findings": [f.as_dict() for f in self.findings],
        }


@dataclass(frozen=True)
class OriginVerdict:
    """What the daemon's origin rule says about one origin for one bot."""

    allowed: bool
    """A widget token would be issued to a page of this origin."""
    cors: str | None
    """The Access-Control-Allow-Origin value the daemon would send (None: none)."""
    frame_ancestors: str
    """The frame page's `frame-ancestors` directive for this bot."""


WidgetRule = Callable[[str, tuple[str, ...]], OriginVerdict]
"""(origin, the bot's allowed origins) → the daemon's verdict."""


@dataclass(frozen=True)
class HttpAnswer:
    status: int | None
    """None: nothing answered (then `error` says why)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


DaemonGet = Callable[[str, Mapping[str, str]], HttpAnswer]
"""GET a full URL with these headers; never raises (an `HttpAnswer` with `status` None)."""


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def _ago(value: datetime, now: datetime) -> str:
    seconds = int((now - value).total_seconds())
    if seconds < 120:
        return "just now"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


# ---- what the database says about a bot ---------------------------------------------------


@dataclass(frozen=True)
class BotState:
    pk: int
    bot_id: str
    client_id: str
    status: str
    paused_reason: str | None
    paused_by: str | None
    paused_at: datetime | None
    suspended: bool
    """Paused by `tcai clients suspend` (so `tcai clients resume` lifts it)."""
    workspace_status: str
    allowed_origins: tuple[str, ...]
    webhook: bool
    emails: int
    pending: int = 0
    retrying: dict[str, Any] | None = None
    """The oldest pending item that has failed at least once."""
    dead: tuple[dict[str, Any], ...] = ()
    dead_count: int = 0
    last_delivered_at: datetime | None = None
    last_lead_at: datetime | None = None
    leads_recent: int = 0
    conversations_recent: int = 0


def _outbox_state(session: Session, where: Any) -> dict[str, Any]:
    def count(*extra: Any) -> int:
        query = sa.select(sa.func.count()).select_from(Outbox).where(where, *extra)
        return int(session.execute(query).scalar_one())

    dead = session.exec(
        select(Outbox)
        .where(where, col(Outbox.status) == "dead")
        .order_by(col(Outbox.id).desc())
        .limit(DEAD_SHOWN)
    ).all()
    retrying = session.exec(
        select(Outbox)
        .where(where, col(Outbox.status) == "pending", col(Outbox.attempts) > 0)
        .order_by(col(Outbox.id))
        .limit(1)
    ).first()
    last = session.execute(
        sa.select(sa.func.max(col(Outbox.delivered_at))).where(where)
    ).scalar_one()
    return {
        "pending": count(col(Outbox.status) == "pending"),
        "dead": tuple(outbox_summary(row) for row in dead),
        "dead_count": count(col(Outbox.status) == "dead"),
        "retrying": outbox_summary(retrying) if retrying is not None else None,
        "last_delivered_at": last,
    }


def load_bot_state(engine: Engine, bot_id: str, *, now: datetime | None = None) -> BotState:
    """One read of everything the bot's findings need; `NotFound` for an unknown bot."""
    since = (now or utcnow()) - RECENT
    with session_scope(engine) as session:
        bot, workspace = get_bot(session, bot_id)
        assert bot.id is not None
        config = bot.config or {}
        last_lead, leads_recent = session.execute(
            sa.select(
                sa.func.max(col(Lead.created_at)),
                sa.func.count().filter(col(Lead.created_at) >= since),
            ).where(col(Lead.bot_id) == bot.id)
        ).one()
        conversations = session.execute(
            sa.select(sa.func.count())
            .select_from(Conversation)
            .where(col(Conversation.bot_id) == bot.id, col(Conversation.last_activity_at) >= since)
        ).scalar_one()
        return BotState(
            pk=bot.id,
            bot_id=bot.bot_id,
            client_id=workspace.slug,
            status=bot.status,
            paused_reason=bot.paused_reason,
            paused_by=bot.paused_by,
            paused_at=bot.paused_at,
            suspended=is_paused_by_suspension(bot),
            workspace_status=workspace.status,
            allowed_origins=tuple(bot.allowed_origins or ()),
            webhook=bool(config.get("webhook_url")),
            emails=len(config.get("notify_emails") or ()),
            last_lead_at=last_lead,
            leads_recent=int(leads_recent or 0),
            conversations_recent=int(conversations),
            **_outbox_state(session, col(Outbox.bot_id) == bot.id),
        )


# ---- the bot's findings ---------------------------------------------------------------------


def bot_findings(bot: BotState) -> list[Finding]:
    """The bot's own status and its workspace's."""
    findings = []
    if bot.status == "active":
        findings.append(Finding("bot", "ok", f"{bot.bot_id} is active"))
    elif bot.status == "paused":
        by = f" by {bot.paused_by}" if bot.paused_by else ""
        findings.append(
            Finding(
                "bot",
                "fail",
                f"{bot.bot_id} is paused{by} since {when(bot.paused_at)} "
                f"({bot.paused_reason or 'no reason given'}): visitors get the polite "
                "we'll-be-back note",
                f"tcai clients resume {bot.client_id}"
                if bot.suspended and bot.workspace_status == "suspended"
                else f"tcai bots resume {bot.bot_id}",
            )
        )
    else:
        findings.append(
            Finding(
                "bot",
                "fail",
                f"{bot.bot_id} is a {bot.status} and answers no visitor",
                f"tcai bots check {bot.bot_id}, then tcai bots resume {bot.bot_id}",
            )
        )
    status, slug = bot.workspace_status, bot.client_id
    if status in SERVING:
        findings.append(Finding("workspace", "ok", f"{slug} is {status}"))
    elif status == "suspended":
        findings.append(
            Finding(
                "workspace",
                "fail",
                f"workspace {slug} is suspended: the widget and chat answer 403",
                f"tcai clients resume {slug}",
            )
        )
    elif status == "paused":
        findings.append(
            Finding(
                "workspace",
                "fail",
                f"workspace {slug} is paused: every bot of it gives the polite note",
                f'tcai clients suspend {slug} --reason "reactivate" && tcai clients resume {slug}',
            )
        )
    else:
        findings.append(
            Finding(
                "workspace",
                "fail",
                f"workspace {slug} is {status}: it is not served and does not come back",
                f"tcai clients show {slug} (a new start is tcai clients create)",
            )
        )
    return findings


def _origins_fix(bot: BotState, origin: str) -> str:
    wanted = ",".join(sorted({*bot.allowed_origins, origin}))
    return f"tcai bots set {bot.bot_id} allowed_origins={wanted}"


def pick_origin(bot: BotState, origin: str | None) -> str | None:
    """The origin to examine: the one asked about, else the bot's first allowed one."""
    return origin or (bot.allowed_origins[0] if bot.allowed_origins else None)


def origin_finding(
    bot: BotState, origin: str | None, verdict: OriginVerdict | None, *, signing: bool = True
) -> Finding:
    """Would a page of `origin` get a token, by the daemon's own rule (no HTTP)?
    `signing`: a WIDGET_SECRET is set to sign it with."""
    if not signing:
        return Finding(
            "origin",
            "fail",
            "WIDGET_SECRET is not set, so no widget token can be signed for any website",
            "tcai secrets rotate (writes fresh secrets into .env), then restart tcai serve",
        )
    if origin is None or verdict is None:
        return Finding(
            "origin",
            "fail",
            f"{bot.bot_id} has no allowed origin, so no website of the business can load "
            "the widget",
            f"tcai bots set {bot.bot_id} allowed_origins=https://www.the-business.com",
        )
    if verdict.allowed:
        cors = f"Access-Control-Allow-Origin: {verdict.cors}" if verdict.cors else "same origin"
        return Finding(
            "origin",
            "ok",
            f"{origin} gets a widget token ({cors}; {verdict.frame_ancestors})",
        )
    allowed = ", ".join(bot.allowed_origins) or "none"
    return Finding(
        "origin",
        "fail",
        f"{origin} is not allowed for {bot.bot_id} (allowed: {allowed}): the daemon "
        f"refuses its token (403 origin_not_allowed), sends no CORS header and frames only "
        f"for {verdict.frame_ancestors}",
        _origins_fix(bot, origin),
    )


def frame_allows(policy: str, origin: str, own: str) -> bool:
    """Does a Content-Security-Policy's frame-ancestors let `origin` frame the page?
    Sources are 'self', exact origins and `scheme://host:*` (the forms the daemon sends)."""
    directive = next(
        (part.split()[1:] for part in policy.split(";") if part.split()[:1] == ["frame-ancestors"]),
        None,
    )
    if directive is None:
        return True
    target = urlsplit(origin)
    for source in directive:
        if source == "'self'" and origin == own:
            return True
        if source.endswith(":*"):
            parts = urlsplit(source[:-2])
            if (parts.scheme, parts.hostname) == (target.scheme, target.hostname):
                return True
        elif source.rstrip("/").lower() == origin:
            return True
    return False


def widget_findings(
    bot: BotState, origin: str | None, verdict: OriginVerdict | None, base: str, get: DaemonGet
) -> list[Finding]:
    """The widget over HTTP from the running daemon: the embed script, and (for an origin
    the rule allows; a refused one is already a finding and would only add a log line)
    the config with its token and CORS header, and the frame page's policy."""
    findings = []
    script = f"{base}/widget/embed.js"
    answer = get(script, {})
    if answer.status == 200 and answer.body:
        findings.append(
            Finding("embed_script", "ok", f"the embed snippet's script loads: {script}")
        )
    else:
        got = f"HTTP {answer.status}" if answer.status else (answer.error or "no answer")
        findings.append(
            Finding(
                "embed_script",
                "fail",
                f"{script} does not load from here ({got})",
                f"tcai embed {bot.bot_id} --url <the daemon's public URL> (and serve that URL)",
            )
        )
    if origin is None or verdict is None or not verdict.allowed:
        return findings
    path = f"/api/widget/config/{quote(bot.client_id)}/{quote(bot.bot_id)}"
    answer = get(base + path, {"Origin": origin})
    document = answer.json() if answer.status else None
    allow = answer.headers.get("Access-Control-Allow-Origin")
    if answer.status == 200 and isinstance(document, dict) and document.get("token"):
        if verdict.cors and allow != verdict.cors:
            findings.append(
                Finding(
                    "widget_config",
                    "fail",
                    f"the daemon issued a token to {origin} but sent Access-Control-Allow-Origin: "
                    f"{allow or '(none)'}, so the browser drops it",
                    "check the proxy in front of the daemon: it must pass the daemon's CORS "
                    "headers through (docs/deployment.md)",
                )
            )
        else:
            findings.append(
                Finding(
                    "widget_config",
                    "ok",
                    f"the running daemon issued a token to {origin}"
                    + (f" (Access-Control-Allow-Origin: {allow})" if allow else ""),
                )
            )
    else:
        error = document.get("error", {}) if isinstance(document, dict) else {}
        said = f"{answer.status} {error.get('code', '')}".strip() if answer.status else "no answer"
        if answer.status == 403 and error.get("code") == "origin_not_allowed":
            fix = (
                f"tcai cache invalidate {bot.bot_id} (and give the daemon the same "
                "WIDGET_ALLOWED_ORIGINS and NODE_ENV as this shell)"
            )
            what = "although the database allows it; its settings or cache differ"
        elif answer.status == 404:
            fix = "point --url at the daemon that serves this database (its DATABASE_URL)"
            what = f"it does not know {bot.bot_id}"
        elif answer.status is not None and answer.status >= 500:
            fix = "tcai logs system --level error (the daemon's error names what to set)"
            what = error.get("message") or "see its log"
        else:
            fix = f"tcai health --url {base}"
            what = error.get("message") or "see its log"
        findings.append(
            Finding(
                "widget_config",
                "fail",
                f"the running daemon refused the widget config for {origin} ({said}): {what}",
                fix,
            )
        )
    frame = get(
        f"{base}/widget/frame.html?client={quote(bot.client_id)}&bot={quote(bot.bot_id)}", {}
    )
    policy = frame.headers.get("Content-Security-Policy", "")
    own = f"{urlsplit(base).scheme}://{urlsplit(base).netloc}".lower()
    if frame.status == 200 and frame_allows(policy, origin, own):
        findings.append(Finding("widget_frame", "ok", f"the frame page may be framed by {origin}"))
    else:
        got = f"HTTP {frame.status}" if frame.status else (frame.error or "no answer")
        findings.append(
            Finding(
                "widget_frame",
                "fail",
                f"the frame page refuses to be framed by {origin} ({got}; "
                f"{_directive(policy) or 'no policy'})",
                f"tcai cache invalidate {bot.bot_id}",
            )
        )
    return findings


def _directive(policy: str) -> str:
    return next(
        (p.strip() for p in policy.split(";") if p.strip().startswith("frame-ancestors")), ""
    )


def health_finding(base: str, get: DaemonGet) -> tuple[Finding, bool]:
    """/api/health of the running daemon, read as `tcai health` reads it; and whether
    anything answered (the widget checks over HTTP need a daemon)."""
    target = f"{base}/api/health"
    answer = get(target, {})
    if answer.status is None:
        return (
            Finding(
                "daemon",
                "fail",
                f"no daemon answers at {target} ({answer.error or 'no answer'})",
                "tcai serve (or give --url the running daemon's address)",
            ),
            False,
        )
    document = answer.json()
    if not isinstance(document, dict) or "status" not in document:
        return (
            Finding(
                "daemon",
                "fail",
                f"{target} answered {answer.status} with something that is not tcai's health JSON",
                "give --url the tcai daemon's address (not a proxy's error page)",
            ),
            False,
        )
    db = document.get("db") or {}
    summary = (
        f"{document.get('status')}: version {document.get('version')}, database "
        f"{'ok' if db.get('ok') else 'DOWN'} ({db.get('latency_ms')} ms)"
    )
    if answer.status == 200 and document.get("status") == "ok":
        return Finding("daemon", "ok", f"{base}: {summary}"), True
    return (
        Finding(
            "daemon",
            "fail",
            f"{base}: {summary}; the chat answers from the facts and keeps contacts in the spool",
            "tcai db status (check DATABASE_URL and the database server), then tcai leads recover",
        ),
        True,
    )


LLM_FIXES = {
    "unauthorized": "set a valid OPENAI_API_KEY in .env, then tcai llm check",
    "forbidden": "give the key access to OPENAI_MODEL (or change the model), then tcai llm check",
    "not_found": "set OPENAI_MODEL (and OPENAI_BASE_URL to the API root …/v1), then tcai llm check",
    "rate_limited": "raise the account's quota or limits, then tcai llm check",
    "timeout": "check the endpoint or raise LLM_TIMEOUT_MS, then tcai llm check",
}


def llm_finding(probe: LlmProbe) -> Finding:
    """The same probe as `tcai llm check`; facts mode (no key) is a fine answer too."""
    if not probe.configured:
        return Finding("llm", "ok", probe.message)
    if probe.ok:
        return Finding("llm", "ok", f"the LLM answers: {probe.message}")
    fix = LLM_FIXES.get(
        probe.kind,
        "start the LLM server or set OPENAI_BASE_URL to one that answers (or unset "
        "OPENAI_API_KEY for facts mode), then tcai llm check",
    )
    return Finding(
        "llm",
        "fail",
        f"the LLM does not answer ({probe.kind}): {probe.message}; visitors get the facts "
        "or the failsafe answer",
        fix,
    )


def outbox_finding(bot: BotState, now: datetime) -> Finding:
    last = (
        f"last delivery {when(bot.last_delivered_at)} ({_ago(bot.last_delivered_at, now)})"
        if bot.last_delivered_at
        else "nothing delivered yet"
    )
    if bot.dead_count:
        shown = "; ".join(
            f"#{d['id']} {d['event_type']} to {d['target']} after {d['attempts']} attempts: "
            f"{d['last_error'] or 'no error recorded'}"
            for d in bot.dead
        )
        newest = bot.dead[0]
        mend = (
            "mend the mail server (SMTP_* settings: tcai config show)"
            if newest["channel"] == "email"
            else f"mend the receiver (or tcai bots set {bot.bot_id} webhook_url=https://…)"
        )
        return Finding(
            "outbox",
            "fail",
            f"{bot.dead_count} dead letter(s) for {bot.bot_id}: {shown}; {last}, "
            f"{bot.pending} pending",
            f"{mend}, then tcai outbox retry {newest['id']}",
        )
    if bot.retrying is not None:
        item = bot.retrying
        return Finding(
            "outbox",
            "warn",
            f"#{item['id']} to {item['target']} is failing and being retried "
            f"({item['attempts']} attempts: {item['last_error']}); {last}, {bot.pending} pending",
            f"tcai outbox show {item['id']}",
        )
    if not (bot.webhook or bot.emails) and bot.last_delivered_at is None:
        return Finding(
            "outbox",
            "warn",
            f"{bot.bot_id} has no webhook and no owner e-mail: leads stay in the database "
            "and nobody is told",
            f"tcai bots set {bot.bot_id} webhook_url=https://…",
        )
    return Finding("outbox", "ok", f"delivering: {last}, {bot.pending} pending, no dead letter")


def platform_outbox_finding(engine: Engine, now: datetime) -> Finding:
    """Dead letters and retries across every bot (`tcai doctor` without a bot)."""
    with session_scope(engine) as session:
        state = _outbox_state(session, sa.true())
    last = state["last_delivered_at"]
    said = f"last delivery {when(last)}" + (f" ({_ago(last, now)})" if last else "")
    if state["dead_count"]:
        newest = state["dead"][0]
        return Finding(
            "outbox",
            "fail",
            f"{state['dead_count']} dead letter(s); the newest #{newest['id']} to "
            f"{newest['target']}: {newest['last_error'] or 'no error recorded'}; {said}",
            "tcai outbox list --status dead, mend each receiver, then "
            f"tcai outbox retry {newest['id']}",
        )
    if state["retrying"] is not None:
        item = state["retrying"]
        return Finding(
            "outbox",
            "warn",
            f"#{item['id']} to {item['target']} is failing and being retried: {item['last_error']}",
            f"tcai outbox show {item['id']}",
        )
    return Finding("outbox", "ok", f"no dead letter; {said}, {state['pending']} pending")


def leads_finding(bot: BotState, now: datetime) -> Finding:
    talks = f"{bot.conversations_recent} conversation(s) in the last 7 days"
    if bot.last_lead_at is not None:
        return Finding(
            "leads",
            "ok",
            f"last lead {when(bot.last_lead_at)} ({_ago(bot.last_lead_at, now)}); "
            f"{bot.leads_recent} lead(s) and {talks}",
        )
    return Finding(
        "leads",
        "warn",
        f"no lead from {bot.bot_id} yet; {talks}",
        f"tcai conversations list --workspace {bot.client_id} --bot {bot.bot_id}",
    )


# ---- refused origins, from the daemon's log ------------------------------------------------


def _tail_lines(path: Path) -> Iterator[str]:
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(0, size - LOG_TAIL_BYTES))
        data = handle.read()
    if size > LOG_TAIL_BYTES:
        data = data.partition(b"\n")[2]  # the first line is cut
    for line in data.splitlines():
        yield line.decode("utf-8", "replace")


def log_files(log_dir: Path) -> list[Path]:
    found: list[Path] = []
    for pattern in LOG_FILES:
        found.extend(sorted(p for p in log_dir.glob(pattern) if p.is_file()))
    return found


def refused_origins(
    log_dir: Path, bot_id: str | None, *, since: datetime
) -> dict[tuple[str, str | None], tuple[int, datetime]]:
    """(bot, origin) → (lines, the newest) of the daemon's `widget origin refused` lines
    since `since` (each line stands for a minute or more of refusals)."""
    found: dict[tuple[str, str | None], tuple[int, datetime]] = {}
    for path in log_files(log_dir):
        try:
            lines = list(_tail_lines(path))
        except OSError:
            continue
        for line in lines:
            if REFUSED_EVENT not in line:
                continue
            try:
                entry = json.loads(line)
                at = datetime.fromisoformat(entry["ts"])
            except (ValueError, KeyError, TypeError):
                continue
            if entry.get("event") != REFUSED_EVENT or at < since:
                continue
            if bot_id is not None and entry.get("bot_id") != bot_id:
                continue
            key = (str(entry.get("bot_id")), entry.get("origin"))
            lines_so_far, newest = found.get(key, (0, at))
            found[key] = (lines_so_far + 1, max(newest, at))
    return found


def refusals_finding(log_dir: Path, bot: BotState | None, now: datetime) -> Finding:
    if not log_files(log_dir):
        return Finding(
            "refused_origins",
            "warn",
            f"no daemon log in {log_dir}, so refused origins cannot be read",
            "LOG_DIR=<the daemon's LOG_DIR> tcai doctor …",
        )
    found = refused_origins(log_dir, bot.bot_id if bot else None, since=now - REFUSALS_WINDOW)
    if not found:
        whose = f"for {bot.bot_id} " if bot else ""
        return Finding("refused_origins", "ok", f"no widget origin refused {whose}in the last 24 h")
    ordered = sorted(found.items(), key=lambda item: item[1][1], reverse=True)
    shown = ", ".join(
        f"{origin or '(no Origin header)'}"
        + ("" if bot else f" for {bot_id}")
        + f" (last {when(newest)})"
        for (bot_id, origin), (_lines, newest) in ordered[:5]
    )
    first_bot, first_origin = ordered[0][0]
    if bot is not None and first_origin:
        fix = f"if it is the business's own site: {_origins_fix(bot, first_origin)}"
    else:
        fix = f"tcai doctor {first_bot} --origin {first_origin or '<the site>'}"
    return Finding(
        "refused_origins",
        "warn",
        f"the daemon refused widget origin(s) in the last 24 h: {shown}",
        fix,
    )


# ---- a user ----------------------------------------------------------------------------------


def user_findings(engine: Engine, email: str, *, now: datetime | None = None) -> list[Finding]:
    """Disabled or invited, locked out (until when, after how many failures), last login."""
    at = now or utcnow()
    address = account_email(email)
    with session_scope(engine) as session:
        user = session.exec(select(User).where(col(User.email) == address)).first()
        lockout = session.exec(select(Lockout).where(col(Lockout.email) == address)).first()
        invite = None
        if user is not None:
            invite = session.exec(
                select(UserInvite, Workspace.slug)
                .join(Workspace, col(Workspace.id) == col(UserInvite.workspace_id))
                .where(
                    col(UserInvite.user_id) == user.id,
                    col(UserInvite.accepted_at).is_(None),
                    col(UserInvite.revoked_at).is_(None),
                )
                .order_by(col(UserInvite.expires_at).desc())
            ).first()
    findings: list[Finding] = []
    if user is None:
        findings.append(
            Finding(
                "user",
                "fail",
                f"no account {address}: a login with it always fails (the portal does not say so)",
                f"tcai users invite --email {address} --workspace <slug> --role <role>",
            )
        )
    elif invite is not None:
        pending, slug = invite
        again = f"tcai users invite --email {address} --workspace {slug} --role {pending.role}"
        if pending.expires_at > at:
            findings.append(
                Finding(
                    "user",
                    "warn",
                    f"{address} is invited to {slug} as {pending.role} and has not chosen a "
                    f"password yet; the link works until {when(pending.expires_at)}",
                    f"{again} (a new link, if the first is lost)",
                )
            )
        else:
            findings.append(
                Finding(
                    "user",
                    "fail",
                    f"{address}'s invitation to {slug} expired {when(pending.expires_at)}",
                    again,
                )
            )
    elif user.disabled:
        findings.append(
            Finding(
                "user",
                "fail",
                f"{address} is disabled: it cannot log in",
                f"tcai users disable {address} --enable",
            )
        )
    else:
        note = "; must change the password at next login" if user.must_change_password else ""
        findings.append(Finding("user", "ok", f"{address} is enabled{note}"))
    failed = lockout.failed_count if lockout else 0
    locked_until = lockout.locked_until if lockout else None
    if locked_until is not None and locked_until > at:
        findings.append(
            Finding(
                "lockout",
                "fail",
                f"{address} is locked out until {when(locked_until)} after {failed} failed "
                "login(s)",
                f"tcai users unlock {address}",
            )
        )
    else:
        findings.append(
            Finding(
                "lockout",
                "ok",
                f"{address} is not locked out ({failed} failed login(s) counted)",
            )
        )
    if user is not None:
        last = user.last_login_at
        findings.append(
            Finding(
                "last_login",
                "ok",
                f"last login {when(last)}" + (f" ({_ago(last, at)})" if last else ""),
            )
        )
    return findings


# ---- the whole report ------------------------------------------------------------------------


def run_doctor(
    engine: Engine,
    settings: Settings,
    *,
    bot_id: str | None,
    origin: str | None,
    email: str | None,
    base: str,
    get: DaemonGet,
    rule: WidgetRule,
    llm: Callable[[Settings], LlmProbe] | None = None,
    now: datetime | None = None,
) -> DoctorReport:
    """Every finding for a bot and/or a user; with neither, the platform's own: the daemon,
    the LLM and refused origins of every bot."""
    from tcai.quality.llm_probe import probe_llm

    at = now or utcnow()
    report = DoctorReport(subject={"daemon_url": base})
    bot = load_bot_state(engine, bot_id, now=at) if bot_id is not None else None
    if bot is not None:
        examined = pick_origin(bot, origin)
        verdict = rule(examined, bot.allowed_origins) if examined else None
        report.subject.update(bot_id=bot.bot_id, client_id=bot.client_id, origin=examined)
        report.findings += bot_findings(bot)
        signing = settings.widget_secret is not None
        report.findings.append(origin_finding(bot, examined, verdict, signing=signing))
        # Read before the widget requests below, so this run's own requests never count.
        refusals = refusals_finding(Path(settings.log_dir), bot, at)
    if email is not None:
        report.subject["user"] = account_email(email)
    if bot is not None or email is None:
        health, reachable = health_finding(base, get)
        if bot is not None and reachable:
            report.findings += widget_findings(bot, examined, verdict, base, get)
        report.findings.append(health)
        report.findings.append(llm_finding((llm or probe_llm)(settings)))
    if bot is not None:
        report.findings.append(outbox_finding(bot, at))
        report.findings.append(leads_finding(bot, at))
        report.findings.append(refusals)
    elif email is None:
        report.findings.append(platform_outbox_finding(engine, at))
        report.findings.append(refusals_finding(Path(settings.log_dir), None, at))
    if email is not None:
        report.findings += user_findings(engine, email, now=at)
    return report
