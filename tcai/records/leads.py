"""Leads for operators: list, search, change a lead's status (audited) and export (CSV
safe for spreadsheets, or JSON).

Functions the portal calls take the workspace's id, so a lead of another workspace is
simply not found.

CSV cells that a spreadsheet would read as a formula (starting with = + - @, a tab or a
carriage return) are prefixed with an apostrophe, except the phone column: a stored E.164
number is written in its international format (`+1 772-555-0142`), which spreadsheets read
as text and CRMs read as a phone, with no apostrophe; `raw=True` writes every value as
stored, unguarded, for machine consumers (docs/data-model.md, "Leads as CSV").

Importing the spool the chat engine writes when the database refused a turn is
`tcai.chat.recovery`'s job.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from tcai.audit import record_audit
from tcai.db.engine import session_scope
from tcai.db.models import (
    LEAD_STATUSES,
    Bot,
    Lead,
    Workspace,
)
from tcai.db.types import utcnow
from tcai.errors import InvalidInput, NotFound

STATUSES: tuple[str, ...] = LEAD_STATUSES
"""The statuses a lead can have, in their working order (the database allows only these)."""
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


def _local_start(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(0, 0), ZoneInfo(zone))


def find_leads(
    engine: Engine,
    workspace_id: int,
    *,
    status: str | None = None,
    since: date | None = None,
    until: date | None = None,
    search: str | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """A workspace's leads, newest first: by status, created between two days (inclusive,
    in the workspace's time zone) and a search over name, phone, e-mail and service."""
    if status is not None and status not in LEAD_STATUSES:
        raise InvalidInput(f"status: must be one of {', '.join(LEAD_STATUSES)}")
    with session_scope(engine) as session:
        ws = session.get(Workspace, workspace_id)
        if ws is None:
            raise NotFound("There is nothing at this address.")
        query = (
            select(Lead, Bot.bot_id)
            .join(Bot, col(Lead.bot_id) == col(Bot.id), isouter=True)
            .where(Lead.workspace_id == workspace_id)
            .order_by(col(Lead.created_at).desc(), col(Lead.id).desc())
            .limit(limit)
        )
        if status:
            query = query.where(Lead.status == status)
        if since:
            query = query.where(col(Lead.created_at) >= _local_start(since, ws.timezone))
        if until:
            end = _local_start(until + timedelta(days=1), ws.timezone)
            query = query.where(col(Lead.created_at) < end)
        text = (search or "").strip().lower()[:100]
        if text:
            query = query.where(
                sa.or_(
                    *(
                        sa.func.lower(sa.func.coalesce(column, "")).contains(text, autoescape=True)
                        for column in (
                            col(Lead.name),
                            col(Lead.phone),
                            col(Lead.email),
                            col(Lead.service_requested),
                        )
                    )
                )
            )
        return [_lead_row(lead, bot_id) for lead, bot_id in session.exec(query)]


def set_lead_status(
    engine: Engine, workspace_id: int, lead_id: int, status: str, *, actor: str
) -> dict[str, Any]:
    """Move one lead of the workspace to `status` (new, contacted, qualified, converted,
    lost), audited with `actor`; a lead of another workspace is `NotFound`."""
    if status not in LEAD_STATUSES:
        raise InvalidInput(f"status: must be one of {', '.join(LEAD_STATUSES)}")
    with session_scope(engine) as session:
        lead = session.exec(
            select(Lead).where(Lead.id == lead_id, Lead.workspace_id == workspace_id)
        ).first()
        if lead is None:
            raise NotFound("There is no such lead in this workspace.")
        before = lead.status
        if before != status:
            lead.status, lead.updated_at = status, utcnow()
            session.add(lead)
            record_audit(
                session,
                actor=actor,
                action="lead.status",
                target=f"lead:{lead_id}",
                workspace_id=workspace_id,
                before={"status": before},
                after={"status": status},
            )
        return _lead_row(lead, None)


def export_leads_csv(
    engine: Engine,
    workspace_id: int,
    *,
    actor: str,
    raw: bool = False,
    status: str | None = None,
    since: date | None = None,
    until: date | None = None,
    search: str | None = None,
) -> str:
    """The workspace's leads (filtered like `find_leads`) as formula-safe CSV (`raw`: as
    stored, see `to_csv`); the export of personal data in bulk is audited with `actor`
    and the row count."""
    rows = find_leads(
        engine,
        workspace_id,
        status=status,
        since=since,
        until=until,
        search=search,
        limit=100_000,
    )
    with session_scope(engine) as session:
        record_audit(
            session,
            actor=actor,
            action="lead.export",
            target=f"workspace:{workspace_id}",
            workspace_id=workspace_id,
            after={"rows": len(rows), "status": status, "search": bool(search)},
        )
    return to_csv(rows, raw=raw)


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


def phone_cell(value: Any) -> str:
    """A stored phone for a spreadsheet: E.164 in its international format, `+` then
    the country code, a space, and the digits grouped by spaces or hyphens
    (`+17725550142` → `+1 772-555-0142`, `+442079460958` → `+44 20 7946 0958`).

    Written as bare E.164, a spreadsheet reads the cell as the number 17725550142 (the
    `+` lost, shown as 1.77E+10); with the formula guard's apostrophe it keeps the
    apostrophe as part of the text and a CRM imports it. The grouped form is neither a
    number nor a well-formed formula, so it stays text (LibreOffice checked; Excel and
    Google Sheets by their parsing rules: docs/data-model.md) and a CRM reads a phone.
    It skips the guard only
    because phonenumbers wrote it: `+`, digits, spaces and hyphens, so nothing a visitor
    typed reaches the cell unguarded and, even evaluated, it calls no function and
    names no cell. Anything that is not a possible number keeps the guard."""
    import phonenumbers

    text = "" if value is None else str(value)
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return safe_cell(text)
    if not phonenumbers.is_possible_number(number):
        return safe_cell(text)
    grouped = str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL))
    return grouped if _GROUPED_PHONE.fullmatch(grouped) else safe_cell(text)


_GROUPED_PHONE = re.compile(r"\+[1-9][0-9]{0,2} [0-9][0-9 -]*[0-9]")
"""What `phone_cell` may write unguarded: a space right after the country code keeps
a spreadsheet from reading it as a sum (`+1-772-555-0142` would be)."""


def to_csv(rows: Sequence[dict[str, Any]], *, bom: bool = False, raw: bool = False) -> str:
    """Leads as CSV, the header then one row each (`EXPORT_COLUMNS`).

    By default for people and their spreadsheets: text cells formula-guarded
    (`safe_cell`), phones grouped (`phone_cell`). `raw` is for machine consumers: every
    value exactly as stored (`+17725550142`, a name starting with `=`), no guard; such
    a file must not be opened in a spreadsheet."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow([_cell(column, row.get(column), raw) for column in EXPORT_COLUMNS])
    return ("\ufeff" if bom else "") + buffer.getvalue()


def _cell(column: str, value: Any, raw: bool) -> str:
    if raw:
        return "" if value is None else str(value)
    if column == "phone" and value:
        return phone_cell(value)
    return safe_cell(value)
