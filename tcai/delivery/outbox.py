"""The outbox: webhook and owner e-mail deliveries that survive restarts
(docs/chat-pipeline.md, docs/data-model.md).

This module owns what happens to an `Outbox` row after the chat engine wrote it: who
claims it, how it is delivered, what a failure means, and the delivery log
(`OutboxAttempt`). One pass (`deliver_due`) is three steps, and no transaction is open
while anything travels over the network:

1. claim: one short transaction selects due rows (`FOR UPDATE SKIP LOCKED` on
   PostgreSQL; on SQLite the transaction already holds the single writer lock) and
   leases them by moving `next_attempt_at` `LEASE` ahead;
2. deliver: webhooks POSTed through the SSRF guard of `tcai.delivery.webhooks`, signed with the
   bot's current `webhook_secret` (read from its config now, never stored in the row);
   e-mails over SMTP with smtplib in a thread;
3. record: one short transaction writes an `OutboxAttempt` per attempt and marks each
   row delivered, due again after an exponential backoff with full jitter, or dead
   after `OUTBOX_MAX_ATTEMPTS`.

A crash between 1 and 3 loses nothing: the lease runs out and the row is claimed
again, so delivery is at least once and receivers dedupe on `X-TCAI-Delivery`.
It does not write webhook rows (that is `tcai.chat.store`) nor run the daemon loop's
lifecycle (that is `tcai.daemon.app`, through `OutboxWorker`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import smtplib
import ssl
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from tcai.audit import record_audit
from tcai.config import Settings
from tcai.db.engine import session_scope
from tcai.db.models import OUTBOX_STATUSES, Bot, Outbox, OutboxAttempt, SystemLog
from tcai.db.types import utcnow
from tcai.delivery.webhooks import (
    WEBHOOK_TIMEOUT_S,
    TargetRefused,
    post_webhook,
    webhook_headers,
)
from tcai.errors import Conflict, DatabaseUnavailable, NotFound, UsageError

log = logging.getLogger("tcai.delivery.outbox")

LEASE = timedelta(minutes=2)
BACKOFF_BASE_S = 30.0
BACKOFF_CAP_S = 24 * 3600.0
MAX_ERROR_CHARS = 500
SMTP_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 5.0
CONCURRENCY = 10
CLAIM_LIMIT = 50


# ---- backoff ---------------------------------------------------------------------------


def backoff_cap(failures: int) -> float:
    """The longest wait after the `failures`-th failed attempt: 30 s, 60 s, 120 s, …,
    doubling, never more than 24 h."""
    exponent = max(failures - 1, 0)
    if exponent >= 32:
        return BACKOFF_CAP_S
    return min(BACKOFF_CAP_S, BACKOFF_BASE_S * (1 << exponent))


def backoff_delay(failures: int, rng: random.Random | None = None) -> timedelta:
    """Full jitter: a uniform wait between 0 and `backoff_cap(failures)`, so a receiver
    that comes back is not met by every sender at the same instant."""
    cap = backoff_cap(failures)
    return timedelta(seconds=(rng or random).uniform(0.0, cap))


# ---- enqueueing ------------------------------------------------------------------------


@dataclass(frozen=True)
class EventSource:
    """Whose event it is: the workspace and bot it belongs to, as the payload names them."""

    workspace_id: int
    bot_pk: int
    client_id: str
    bot_id: str
    business_name: str | None = None


def enqueue(
    session: Session,
    source: EventSource,
    event_type: str,
    data: dict[str, Any],
    *,
    now: datetime,
    webhook_url: str | None = None,
    emails: Sequence[str] = (),
) -> list[str]:
    """Queue one event for delivery, in the caller's transaction: a `webhook` row for the
    bot's webhook (when it has one) and an `email` row per owner address (the caller
    passes none when SMTP is not configured, or for events owners are not e-mailed
    about). Every delivery of tcai goes through here. Returns the new event ids."""
    targets = [("webhook", webhook_url)] if webhook_url else []
    targets += [
        ("email", address)
        for address in dict.fromkeys(a.strip() for a in emails if a and a.strip())
    ]
    event_ids: list[str] = []
    for channel, target in targets:
        event_id = uuid.uuid4().hex
        payload: dict[str, Any] = {
            "id": event_id,
            "type": event_type,
            "created_at": now.isoformat(),
            "client_id": source.client_id,
            "bot_id": source.bot_id,
            "data": data,
        }
        if channel == "email":
            payload["business_name"] = source.business_name
        session.add(
            Outbox(
                event_id=event_id,
                workspace_id=source.workspace_id,
                bot_id=source.bot_pk,
                event_type=event_type,
                channel=channel,
                target=target,
                payload=payload,
                next_attempt_at=now,
                created_at=now,
            )
        )
        event_ids.append(event_id)
    return event_ids


# ---- one pass --------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A leased row, copied out of its transaction."""

    id: int
    event_id: str
    event_type: str
    channel: str
    target: str
    payload: dict[str, Any]
    attempts: int
    lease_until: datetime
    webhook_secret: str | None = field(default=None, repr=False)


@dataclass
class Delivery:
    outbox_id: int
    event_id: str
    channel: str
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int
    outcome: str = ""
    """delivered, retry, dead, or superseded (another worker took the row over)."""
    next_attempt_at: datetime | None = None


@dataclass
class DeliveryRun:
    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    items: list[Delivery] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        document = asdict(self)
        for item in document["items"]:
            at = item["next_attempt_at"]
            item["next_attempt_at"] = at.isoformat() if at else None
        return document


def _webhook_secret(
    session: Session, bot_pk: int | None, cache: dict[int, str | None]
) -> str | None:
    """The bot's current secret, straight from its stored config (validated when saved)."""
    if bot_pk is None:
        return None
    if bot_pk not in cache:
        document = session.exec(select(Bot.config).where(col(Bot.id) == bot_pk)).first()
        value = document.get("webhook_secret") if isinstance(document, dict) else None
        cache[bot_pk] = value if isinstance(value, str) and value else None
    return cache[bot_pk]


def claim_due(engine: Engine, *, now: datetime, limit: int = CLAIM_LIMIT) -> list[Claim]:
    """Lease up to `limit` due rows in one short transaction and return copies of them."""
    lease_until = now + LEASE
    with session_scope(engine) as session:
        stmt = (
            select(Outbox)
            .where(Outbox.status == "pending", col(Outbox.next_attempt_at) <= now)
            .order_by(col(Outbox.next_attempt_at), col(Outbox.id))
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        rows = list(session.exec(stmt))
        secrets: dict[int, str | None] = {}
        claims: list[Claim] = []
        for row in rows:
            assert row.id is not None
            row.next_attempt_at = lease_until
            session.add(row)
            claims.append(
                Claim(
                    id=row.id,
                    event_id=row.event_id,
                    event_type=row.event_type,
                    channel=row.channel,
                    target=row.target,
                    payload=dict(row.payload or {}),
                    attempts=row.attempts,
                    lease_until=lease_until,
                    webhook_secret=_webhook_secret(session, row.bot_id, secrets)
                    if row.channel == "webhook"
                    else None,
                )
            )
    return claims


def _clean_error(text: str, secrets: Sequence[str | None]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "********")
    text = re.sub(r"(?i)(://)[^/@\s]*@", r"\1", text)  # credentials in URLs
    text = " ".join(text.split())
    return text[:MAX_ERROR_CHARS]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    detail = str(exc).strip()
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


async def _deliver_webhook(
    claim: Claim, settings: Settings, timeout_s: float
) -> tuple[int | None, str | None]:
    body = json.dumps(claim.payload, ensure_ascii=False, separators=(",", ":")).encode()
    # The signature carries the moment of sending (wall clock), which receivers compare
    # with theirs; `now` only schedules.
    headers = webhook_headers(
        event_type=claim.event_type,
        event_id=claim.event_id,
        body=body,
        secret=claim.webhook_secret,
        timestamp=int(time.time()),
    )
    try:
        result = await post_webhook(
            claim.target,
            body,
            headers,
            allow_private=settings.webhook_allow_private,
            timeout_s=timeout_s,
        )
    except TargetRefused as exc:
        return None, f"refused: {exc}"
    except TimeoutError:
        return None, f"timed out after {timeout_s:g} s"
    except Exception as exc:  # aiohttp, ssl and OS errors: a failed attempt, never a crash
        return None, f"connection failed: {_describe(exc)}"
    return result.status_code, result.error


def _line(text: Any, limit: int = 200) -> str:
    """One header-safe line of visitor-supplied text."""
    return " ".join(str(text).split())[:limit]


def make_lead_email(claim: Claim, sender: str) -> EmailMessage:
    """The owner notification: subject "New lead: <name or phone>", a short plain body."""
    payload = claim.payload
    lead = payload.get("data") or {}
    who = _line(lead.get("name") or lead.get("phone") or lead.get("email") or "a visitor", 100)
    business = _line(payload.get("business_name") or payload.get("client_id") or "your business")
    rows = [
        ("Name", lead.get("name")),
        ("Phone", lead.get("phone")),
        ("E-mail", lead.get("email")),
        ("Service", lead.get("service_requested")),
        ("Priority", lead.get("priority")),
        ("Booking", lead.get("booking_status")),
    ]
    lines = [f"{business} has a new lead from its website chat.", ""]
    lines += [f"{label}: {_line(value)}" for label, value in rows if value]
    lines += [
        "",
        f"Captured {payload.get('created_at', '')} (UTC) by {payload.get('bot_id', '')}.",
        "Reply soon: leads contacted within the hour book far more often.",
    ]
    if lead.get("over_quota"):
        lines += [
            "",
            "This lead is over your plan's monthly lead quota. It is kept and sent to you "
            "all the same; ask your agency about a larger plan.",
        ]
    message = EmailMessage()
    message["Subject"] = f"New lead: {who}"
    message["From"] = sender
    message["To"] = claim.target
    if lead.get("email"):
        message["Reply-To"] = _line(lead["email"], 254)
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["X-TCAI-Delivery"] = claim.event_id
    message.set_content("\n".join(lines) + "\n")
    return message


def make_notice_email(claim: Claim, sender: str) -> EmailMessage:
    """A notice for the agency (a canary failing or passing again, docs/canaries.md): the
    subject and body lines its event carries in `data.subject` and `data.lines`."""
    data = claim.payload.get("data") or {}
    message = EmailMessage()
    message["Subject"] = _line(data.get("subject") or claim.event_type)
    message["From"] = sender
    message["To"] = claim.target
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["X-TCAI-Delivery"] = claim.event_id
    lines = [str(line) for line in data.get("lines") or ()]
    message.set_content("\n".join(lines) + "\n")
    return message


def send_email(settings: Settings, message: EmailMessage, timeout_s: float) -> None:
    """Hand one message to the configured SMTP server (blocking; run it in a thread)."""
    assert settings.smtp_host is not None
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if settings.smtp_port == 465:
        smtp = smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=timeout_s, context=context
        )
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout_s)
    with smtp:
        if settings.smtp_port != 465 and settings.smtp_starttls:
            smtp.starttls(context=context)
        if settings.smtp_username and settings.smtp_password is not None:
            smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        smtp.send_message(message)


async def _deliver_email(
    claim: Claim, settings: Settings, timeout_s: float
) -> tuple[int | None, str | None]:
    if not settings.smtp_enabled or settings.smtp_from is None:
        return None, "SMTP is not configured (set SMTP_HOST and SMTP_FROM)"
    make = make_notice_email if claim.event_type.startswith("canary.") else make_lead_email
    message = make(claim, settings.smtp_from)
    try:
        await asyncio.wait_for(
            asyncio.to_thread(send_email, settings, message, timeout_s), timeout_s + 1
        )
    except smtplib.SMTPResponseException as exc:
        return exc.smtp_code, f"SMTP {exc.smtp_code}: {_describe(exc)}"
    except TimeoutError:
        return None, f"SMTP timed out after {timeout_s:g} s"
    except Exception as exc:  # smtplib, ssl and OS errors
        return None, f"SMTP failed: {_describe(exc)}"
    return 250, None


async def _deliver(claim: Claim, settings: Settings, timeout_s: float) -> Delivery:
    started = time.monotonic()
    if claim.channel == "email":
        status, error = await _deliver_email(claim, settings, min(timeout_s, SMTP_TIMEOUT_S))
    else:
        status, error = await _deliver_webhook(claim, settings, timeout_s)
    if error is not None:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        error = _clean_error(error, (claim.webhook_secret, password))
    return Delivery(
        outbox_id=claim.id,
        event_id=claim.event_id,
        channel=claim.channel,
        ok=error is None,
        status_code=status,
        error=error,
        duration_ms=int((time.monotonic() - started) * 1000),
    )


def record_results(
    engine: Engine,
    claims: Sequence[Claim],
    results: Sequence[Delivery],
    *,
    now: datetime,
    max_attempts: int,
    rng: random.Random | None = None,
) -> None:
    """Write the delivery log and each row's new state, in one short transaction."""
    by_id = {claim.id: claim for claim in claims}
    with session_scope(engine) as session:
        for result in results:
            claim = by_id[result.outbox_id]
            row = session.get(Outbox, claim.id, with_for_update=True)
            if row is None:  # erased meanwhile (privacy, retention): nothing to log against
                result.outcome = "superseded"
                continue
            session.add(
                OutboxAttempt(
                    outbox_id=claim.id,
                    attempted_at=now,
                    status_code=result.status_code,
                    error=result.error,
                    duration_ms=result.duration_ms,
                )
            )
            ours = row.status == "pending" and row.next_attempt_at == claim.lease_until
            if result.ok:
                if row.status != "delivered":
                    row.status, row.delivered_at, row.last_error = "delivered", now, None
                row.attempts += 1
                result.outcome = "delivered"
            elif not ours:
                # The lease ran out and another worker owns the row now: log, do not steer.
                row.attempts += 1
                result.outcome = "superseded"
            else:
                row.attempts += 1
                row.last_error = result.error
                if row.attempts >= max_attempts:
                    row.status = "dead"
                    result.outcome = "dead"
                    session.add(
                        SystemLog(
                            level="warning",
                            source="outbox",
                            message=(
                                f"{row.channel} delivery {row.event_id} ({row.event_type}) "
                                f"is dead after {row.attempts} attempts; "
                                f"`tcai outbox retry {row.id}` tries again"
                            ),
                            details={"outbox_id": row.id, "last_error": result.error},
                            workspace_id=row.workspace_id,
                        )
                    )
                else:
                    row.next_attempt_at = now + backoff_delay(row.attempts, rng)
                    result.outcome = "retry"
                    result.next_attempt_at = row.next_attempt_at
            session.add(row)


async def deliver_due(
    engine: Engine,
    settings: Settings,
    *,
    limit: int = CLAIM_LIMIT,
    now: datetime | None = None,
    timeout_s: float = WEBHOOK_TIMEOUT_S,
    rng: random.Random | None = None,
) -> DeliveryRun:
    """One pass: claim due rows, deliver them concurrently, record the outcomes."""
    when = now or utcnow()
    claims = await asyncio.to_thread(claim_due, engine, now=when, limit=limit)
    run = DeliveryRun(claimed=len(claims))
    if not claims:
        return run
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(claim: Claim) -> Delivery:
        async with gate:
            return await _deliver(claim, settings, timeout_s)

    results = list(await asyncio.gather(*(one(claim) for claim in claims)))
    recorded_at = now or utcnow()
    await asyncio.to_thread(
        record_results,
        engine,
        claims,
        results,
        now=recorded_at,
        max_attempts=settings.outbox_max_attempts,
        rng=rng,
    )
    run.items = results
    run.delivered = sum(r.outcome == "delivered" for r in results)
    run.retried = sum(r.outcome == "retry" for r in results)
    run.dead = sum(r.outcome == "dead" for r in results)
    for result in results:
        if not result.ok:
            log.log(
                logging.WARNING if result.outcome == "dead" else logging.INFO,
                "outbox %s delivery %s failed (%s): %s",
                result.channel,
                result.event_id,
                result.outcome,
                result.error,
            )
    return run


# ---- the daemon's loop -----------------------------------------------------------------


class OutboxWorker:
    """Runs `deliver_due` every `interval` seconds, and at once when woken. Errors are
    logged and the loop goes on; it never runs inside a request."""

    def __init__(
        self, engine: Engine, settings: Settings, *, interval: float = POLL_INTERVAL_S
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.interval = interval
        self.passes = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Ask for a pass now; safe from any thread (the chat engine persists in one)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop is shutting down
            loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._task = asyncio.create_task(self.run(), name="tcai-outbox")

    async def stop(self, grace_s: float = 2.0) -> None:
        """Let a pass in progress finish for up to `grace_s`, then cancel it (whatever it
        had claimed is delivered after its lease runs out)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        done, _ = await asyncio.wait({task}, timeout=grace_s)
        if not done:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                run = await deliver_due(self.engine, self.settings)
                self.passes += 1
                if run.claimed >= CLAIM_LIMIT:  # a backlog: go again without waiting
                    continue
            except (DatabaseUnavailable, SQLAlchemyError) as exc:
                # An outage is not a bug: one line, no traceback; the rows wait in the table.
                first = str(getattr(exc, "message", exc)).strip().splitlines()
                log.error(
                    "outbox pass skipped, the database is unavailable (%s: %s); "
                    "trying again in %.0f s",
                    type(exc).__name__,
                    first[0][:200] if first else "",
                    self.interval,
                )
            except Exception:
                log.exception("outbox pass failed; trying again in %.0f s", self.interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)


# ---- operator commands -----------------------------------------------------------------


def _display_target(target: str) -> str:
    """The target without credentials a URL may carry."""
    if "://" not in target:
        return target
    parts = urlsplit(target)
    if parts.username is None and parts.password is None:
        return target
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def outbox_summary(row: Outbox) -> dict[str, Any]:
    return {
        "id": row.id,
        "event_id": row.event_id,
        "event_type": row.event_type,
        "channel": row.channel,
        "target": _display_target(row.target),
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": _iso(row.next_attempt_at) if row.status == "pending" else None,
        "delivered_at": _iso(row.delivered_at),
        "last_error": row.last_error,
        "created_at": _iso(row.created_at),
    }


def list_outbox(
    session: Session, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The newest items first, optionally of one status."""
    if status is not None and status not in OUTBOX_STATUSES:
        raise UsageError(f"--status must be one of {', '.join(OUTBOX_STATUSES)}")
    stmt = select(Outbox).order_by(col(Outbox.id).desc()).limit(max(1, limit))
    if status is not None:
        stmt = stmt.where(Outbox.status == status)
    return [outbox_summary(row) for row in session.exec(stmt)]


def get_outbox_item(session: Session, outbox_id: int) -> dict[str, Any]:
    """One item with its delivery log, oldest attempt first."""
    row = session.get(Outbox, outbox_id)
    if row is None:
        raise NotFound(f"no outbox item {outbox_id}; see tcai outbox list")
    attempts = session.exec(
        select(OutboxAttempt)
        .where(OutboxAttempt.outbox_id == outbox_id)
        .order_by(col(OutboxAttempt.id))
    ).all()
    document = outbox_summary(row)
    document["log"] = [
        {
            "attempted_at": _iso(a.attempted_at),
            "status_code": a.status_code,
            "error": a.error,
            "duration_ms": a.duration_ms,
        }
        for a in attempts
    ]
    return document


def retry_item(
    engine: Engine,
    outbox_id: int,
    *,
    actor: str = "cli",
    reason: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Make a dead or pending item due now (its attempt count is kept), audited."""
    when = now or utcnow()
    with session_scope(engine) as session:
        row = session.get(Outbox, outbox_id, with_for_update=True)
        if row is None:
            raise NotFound(f"no outbox item {outbox_id}; see tcai outbox list")
        if row.status == "delivered":
            raise Conflict(f"outbox item {outbox_id} was already delivered; nothing to retry")
        before = {"status": row.status, "attempts": row.attempts}
        row.status, row.next_attempt_at = "pending", when
        session.add(row)
        record_audit(
            session,
            actor=actor,
            action="outbox.retry",
            target=f"outbox:{outbox_id}",
            workspace_id=row.workspace_id,
            before=before,
            after={"status": "pending", "attempts": row.attempts},
            reason=reason,
        )
        session.flush()
        return outbox_summary(row)
