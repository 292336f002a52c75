"""Leads for operators: list, export (CSV safe for spreadsheets, or JSON), and recovery
of the durable spool the chat engine writes when the database refused a lead.

CSV cells that a spreadsheet would read as a formula (starting with = + - @, a tab or a
carriage return) are prefixed with an apostrophe. Recovery is idempotent: a lead is
matched by phone or e-mail within its workspace, so importing the same spool twice
changes nothing; imported entries move to `<spool>.imported` and failures stay.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from tcai.chat.contacts import Contacts
from tcai.db.engine import session_scope
from tcai.db.models import LEAD_STATUSES, Bot, Lead, Workspace
from tcai.db.types import utcnow
from tcai.errors import InvalidInput, NotFound

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
EXPORT_COLUMNS = (
    "lead_id",
    "created_at",
    "updated_at",
    "name",
    "phone",
    "email",
    "status",
    "priority",
    "source",
    "service_requested",
    "booking_status",
    "consent_text",
    "consent_at",
    "bot_id",
)


def get_workspace(session: Session, slug: str) -> Workspace:
    workspace = session.exec(select(Workspace).where(Workspace.slug == slug)).first()
    if workspace is None:
        raise NotFound(f"no workspace '{slug}'; see tcai clients list")
    return workspace


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """'7d', '12h', '2026-11-01' or an ISO timestamp → an aware UTC datetime."""
    if not text:
        return None
    value = text.strip()
    now = now or utcnow()
    units = {"d": "days", "h": "hours", "m": "minutes"}
    if value[:-1].isdigit() and value[-1:] in units:
        return now - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"--since: '{text}' is not a date (2026-11-01) or an age (7d, 12h)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=now.tzinfo)


def list_leads(
    engine: Engine, workspace: str, *, status: str | None = None, since: datetime | None = None
) -> list[dict[str, Any]]:
    if status is not None and status not in LEAD_STATUSES:
        raise InvalidInput(f"--status: must be one of {', '.join(LEAD_STATUSES)}")
    with session_scope(engine) as session:
        ws = get_workspace(session, workspace)
        query = select(Lead, Bot.bot_id).join(Bot, col(Lead.bot_id) == col(Bot.id), isouter=True)
        query = query.where(Lead.workspace_id == ws.id).order_by(
            col(Lead.created_at).desc(), col(Lead.id).desc()
        )
        if status:
            query = query.where(Lead.status == status)
        if since:
            query = query.where(col(Lead.created_at) >= since)
        return [_lead_row(lead, bot_id) for lead, bot_id in session.exec(query)]


def _lead_row(lead: Lead, bot_id: str | None) -> dict[str, Any]:
    return {
        "lead_id": lead.id,
        "created_at": lead.created_at.isoformat(),
        "updated_at": lead.updated_at.isoformat(),
        "name": lead.name,
        "phone": lead.phone,
        "email": lead.email,
        "status": lead.status,
        "priority": lead.priority,
        "source": lead.source,
        "service_requested": lead.service_requested,
        "booking_status": lead.booking_status,
        "consent_text": lead.consent_text,
        "consent_at": lead.consent_at.isoformat() if lead.consent_at else None,
        "bot_id": bot_id,
    }


def safe_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def to_csv(rows: Sequence[dict[str, Any]], *, bom: bool = False) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow([safe_cell(row.get(column)) for column in EXPORT_COLUMNS])
    return ("\ufeff" if bom else "") + buffer.getvalue()


@dataclass
class RecoveryReport:
    imported: int = 0
    already_present: int = 0
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "already_present": self.already_present,
            "failed": self.failed,
        }


def _recover_one(session: Session, entry: dict[str, Any]) -> bool:
    """Import one spool entry; True when a lead was created or changed."""
    from tcai.chat.store import TurnContext, TurnRecord, upsert_lead

    bot = session.exec(select(Bot).where(Bot.bot_id == entry["bot_id"])).first()
    if bot is None or bot.id is None:
        raise NotFound(f"bot {entry.get('bot_id')!r} no longer exists")
    workspace = session.get(Workspace, bot.workspace_id)
    assert workspace is not None and workspace.id is not None
    contacts = Contacts(
        **{k: entry["contacts"].get(k) for k in ("name", "phone", "email", "consent")}
    )
    ctx = TurnContext(
        workspace_id=workspace.id,
        client_id=workspace.slug,
        workspace_status=workspace.status,
        plan=workspace.plan,
        bot_pk=bot.id,
        bot_id=bot.bot_id,
        bot_status=bot.status,
        config_version=bot.config_version,
        messages_this_month=0,
        leads_this_month=0,
    )
    spooled = datetime.fromisoformat(entry["spooled_at"])
    record = TurnRecord(
        session_id=entry.get("session_id") or "spool",
        visitor_hash=None,
        user_text=entry.get("message", ""),
        reply_text="",
        source="failsafe",
        latency_ms=0,
        contacts=contacts,
        priority=entry.get("priority", "normal"),
        now=spooled,
    )
    lead, created, changed = upsert_lead(session, ctx, None, record)
    if lead is not None and created:
        lead.source = "spool"
        session.add(lead)
    return created or changed


def recover_spool(engine: Engine, spool: Path) -> RecoveryReport:
    report = RecoveryReport()
    if not spool.exists():
        return report
    keep: list[str] = []
    done: list[str] = []
    for number, line in enumerate(
        spool.read_text(encoding="utf-8", errors="replace").splitlines(), 1
    ):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            with session_scope(engine) as session:
                changed = _recover_one(session, entry)
            report.imported += int(changed)
            report.already_present += int(not changed)
            done.append(line)
        except Exception as exc:  # keep the line; say why, without its personal data
            report.failed.append(f"line {number}: {type(exc).__name__}: {str(exc)[:120]}")
            keep.append(line)
    if done:
        fd = os.open(
            spool.with_suffix(spool.suffix + ".imported"),
            os.O_WRONLY | os.O_CREAT | os.O_APPEND,
            0o600,
        )
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in done))
        tmp = spool.with_name(f".{spool.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in keep))
        os.replace(tmp, spool)
    return report
