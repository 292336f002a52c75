"""The business facts an owner or manager edits from the portal: hours, address, phone,
booking link and the websites the widget may run on.

A form shows `current_facts` (every field as text, the way `tcai bots set` takes it) and
sends back what the person typed; `change_facts` turns only the fields that differ into
`key=value` assignments and hands them to `change_bot`, so the same validators, audit
and change signal apply as for the CLI. Nothing here knows HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.engine import Engine

from tcai.bots.config import WEEKDAYS, BotConfig
from tcai.bots.service import BotChange, change_bot, get_bot
from tcai.db.engine import session_scope

SIMPLE_FIELDS = ("phone", "address", "booking_url", "allowed_origins")
HOURS_FIELDS = tuple(f"hours.{day}" for day in WEEKDAYS)
FACT_FIELDS = (*SIMPLE_FIELDS, *HOURS_FIELDS)
MAX_FIELD = 2000


def current_facts(config: BotConfig, allowed_origins: list[str]) -> dict[str, str]:
    """Every editable fact as the text a form shows: hours as `09:00-17:00,18:00-20:00`
    or `closed` (empty when the business never gave any), origins comma-separated."""
    business = config.business
    facts = {
        "phone": business.phone or "",
        "address": business.address or "",
        "booking_url": config.booking.url or "",
        "allowed_origins": ", ".join(allowed_origins),
    }
    for day in WEEKDAYS:
        if not business.hours:
            facts[f"hours.{day}"] = ""
        else:
            spans = business.hours.get(day, ())
            facts[f"hours.{day}"] = ",".join(spans) if spans else "closed"
    return facts


def _origins(text: str) -> list[str]:
    return sorted(o.strip().rstrip("/").lower() for o in text.split(",") if o.strip())


def _squash(text: str) -> str:
    return text.replace(" ", "").lower()


def _same(field: str, old: str, new: str) -> bool:
    if field == "allowed_origins":
        return _origins(old) == _origins(new)
    if field.startswith("hours."):
        return _squash(old) == _squash(new) or (old == "" and _squash(new) in ("", "closed"))
    return old.strip() == new.strip()


def fact_assignments(
    config: BotConfig, allowed_origins: list[str], values: Mapping[str, str]
) -> list[str]:
    """`key=value` assignments for the submitted fields that differ from the bot's."""
    now = current_facts(config, allowed_origins)
    out = []
    for field in FACT_FIELDS:
        if field not in values:
            continue
        new = values[field].strip()[:MAX_FIELD]
        if not _same(field, now[field], new):
            out.append(f"{field}={new}")
    return out


def change_facts(
    engine: Engine, workspace_id: int, bot_id: str, values: Mapping[str, str], *, actor: str
) -> BotChange:
    """Apply the submitted facts that differ from the bot's through `change_bot`
    (validated, audited, signalled); a bot of another workspace is `NotFound`."""
    with session_scope(engine) as session:
        bot, _workspace = get_bot(session, bot_id, workspace_id=workspace_id)
        config = BotConfig.model_validate(bot.config)
        origins = list(bot.allowed_origins or [])
        version = bot.config_version
    assignments = fact_assignments(config, origins, values)
    if not assignments:
        return BotChange(bot_id, version, ())
    return change_bot(
        engine, bot_id, assignments=assignments, actor=actor, workspace_id=workspace_id
    )
