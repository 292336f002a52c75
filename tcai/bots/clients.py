"""A client's life after provisioning: show it, update its business facts, suspend and
resume it, change its plan, delete it (an export first), and move one of its leads to a
new status (docs/cli.md, "Client lifecycle").

Every change is one transaction with its audit rows (the actor the caller names) and,
when a bot's serving state or facts change, the change signal, so every running daemon
sees it within two seconds, as after the kill switch (`tcai.bots.signal`).

Rules kept here, and why:
- **Suspend** sets the workspace to `suspended` (the chat engine then answers 403
  `forbidden`, docs/chat-pipeline.md) and pauses every active bot the way the kill switch
  does, with the reason prefixed by `SUSPENDED_PREFIX`, so operators see why each bot is
  down and no bot counts as live. A bot that was already paused (or a draft) is left as
  it was. **Resume** sets the workspace to `active` and resumes only the bots the
  suspension paused: an operator's own kill switch outlives the suspension.
- **Delete** refuses while a bot is live (active in a serving workspace) unless forced,
  writes the export (`tcai.records.workspace_export`) and fsyncs it, then deletes every
  row the registry says the workspace owns (`tcai.records.tables.delete_workspace`), in
  the one transaction that read the export. Pending outbox deliveries are dropped, not
  delivered: they are in the export with their payload and target, and are counted in
  the result and the audit.
- **Plans** are the `plans:` of `tcai/data/chat_rules.yaml`; the caller passes them as
  `tcai.chat.rules.load_rules().plans` (the one reader of that file, a floor above).

Deliberately not here: provisioning (`tcai.bots.provisioning`), one bot's kill switch and
settings (`tcai.bots.service`), the lead listing (`tcai.records.leads`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from tcai.audit import list_audit, record_audit
from tcai.bots.service import apply_assignments, bot_summary, save_config, setters
from tcai.bots.signal import raise_signal
from tcai.db.engine import session_scope
from tcai.db.models import LEAD_STATUSES, Bot, Conversation, Lead, Outbox, Usage, Workspace
from tcai.db.types import utcnow
from tcai.errors import Conflict, InvalidInput, NotFound, UsageError
from tcai.records.leads import set_lead_status
from tcai.records.safe_mode import ensure_not_demo
from tcai.records.tables import delete_workspace
from tcai.records.workspace_export import export_workspace, lock_workspace

Quotas = Mapping[str, tuple[int | None, int | None]]
"""Plan name → (messages, leads) a month; None is unlimited (`ChatRules.plans`)."""

SUSPENDED_PREFIX = "client suspended: "
SERVING = ("active", "demo")
"""Workspace statuses whose active bots answer visitors (paused: the polite note;
suspended, cancelled: 403)."""
FACTS = ("name", "phone", "email", "address", "website", "timezone")
"""The business facts `clients update` sets, each through `tcai bots set`'s validator."""
WORKSPACE_COLUMNS = {
    "name": "name",
    "phone": "contact_phone",
    "email": "contact_email",
    "timezone": "timezone",
}
LEAD_WORDS = {"new": "new", "contacted": "contacted", "won": "converted", "lost": "lost"}
"""The words `tcai leads status` takes; the stored statuses are accepted as well."""
MAX_REASON = 500


# ---- look-ups ------------------------------------------------------------------------


def get_client(session: Session, slug: str, *, lock: bool = False) -> Workspace:
    query = select(Workspace).where(Workspace.slug == slug.strip())
    workspace = session.exec(query.with_for_update() if lock else query).first()
    if workspace is None:
        raise NotFound(f"no client '{slug}'; see tcai clients list")
    return workspace


def _bots(session: Session, workspace: Workspace, *, lock: bool = False) -> list[Bot]:
    query = select(Bot).where(Bot.workspace_id == workspace.id).order_by(col(Bot.bot_id))
    return list(session.exec(query.with_for_update() if lock else query).all())


def _quotas(plans: Quotas, plan: str) -> dict[str, int | None]:
    messages, leads = plans.get(plan, (None, None))
    return {"messages": messages, "leads": leads}


def _plan_list(plans: Quotas) -> str:
    def limit(value: int | None) -> str:
        return "unlimited" if value is None else f"{value:,}"

    return "; ".join(
        f"{name} ({limit(messages)} messages, {limit(leads)} leads a month)"
        for name, (messages, leads) in plans.items()
    )


def _suspension(session: Session, workspace: Workspace) -> dict[str, Any] | None:
    """Who suspended the client, when and why (the newest `client.suspend` audit row;
    None when retention purged it)."""
    rows = list_audit(session, workspace_id=workspace.id, action="client.suspend", limit=1)
    if not rows:
        return None
    return {"reason": rows[0]["reason"], "by": rows[0]["actor"], "at": rows[0]["at"]}


def _bot_view(bot: Bot, workspace: Workspace) -> dict[str, Any]:
    business = (bot.config or {}).get("business", {})
    return {
        **bot_summary(bot, workspace),
        "business": {fact: business.get(fact) for fact in FACTS},
        "booking_url": (bot.config or {}).get("booking", {}).get("url"),
    }


def _workspace_view(workspace: Workspace, plans: Quotas) -> dict[str, Any]:
    return {
        "client_id": workspace.slug,
        "name": workspace.name,
        "status": workspace.status,
        "plan": workspace.plan,
        "quotas": _quotas(plans, workspace.plan),
        "timezone": workspace.timezone,
        "contact_phone": workspace.contact_phone,
        "contact_email": workspace.contact_email,
        "retention_days": {
            "conversations": workspace.retention_conversation_days,
            "leads": workspace.retention_lead_days,
            "logs": workspace.retention_log_days,
        },
        "created_at": workspace.created_at.isoformat(),
        "updated_at": workspace.updated_at.isoformat(),
    }


def _count(session: Session, model: Any, *where: Any) -> int:
    return int(session.exec(select(sa.func.count()).select_from(model).where(*where)).one())


def show_client(engine: Engine, slug: str, *, plans: Quotas) -> dict[str, Any]:
    """The client as operators need it: facts, plan and quotas, this month's usage,
    status (with the suspension's reason), its bots and what it holds."""
    with session_scope(engine, read_only=True) as session:
        workspace = get_client(session, slug)
        month = utcnow().strftime("%Y-%m")
        usage = session.exec(
            select(Usage).where(Usage.workspace_id == workspace.id, Usage.month == month)
        ).first()
        return {
            **_workspace_view(workspace, plans),
            "suspension": _suspension(session, workspace)
            if workspace.status == "suspended"
            else None,
            "usage": {
                "month": month,
                "messages": usage.messages if usage else 0,
                "leads": usage.leads if usage else 0,
            },
            "counts": {
                "leads": _count(session, Lead, Lead.workspace_id == workspace.id),
                "conversations": _count(
                    session, Conversation, Conversation.workspace_id == workspace.id
                ),
                "pending_deliveries": _count(
                    session,
                    Outbox,
                    Outbox.workspace_id == workspace.id,
                    Outbox.status == "pending",
                ),
            },
            "bots": [_bot_view(bot, workspace) for bot in _bots(session, workspace)],
        }


# ---- business facts ------------------------------------------------------------------


def _checked_facts(facts: Mapping[str, str | None]) -> dict[str, str | None]:
    """The facts given (None: not given; "": clear it), each through the validator `tcai
    bots set` uses, named by its flag when it fails; returns the normalised values."""
    given = {key: value for key, value in facts.items() if value is not None}
    unknown = sorted(set(given) - set(FACTS))
    if unknown:
        raise UsageError(f"unknown fact(s) {', '.join(unknown)}; facts: {', '.join(FACTS)}")
    if not given:
        raise UsageError(f"nothing to change; give at least one of --{', --'.join(FACTS)}")
    name = given.get("name")
    if name is not None and not (name.strip() and len(name) <= 200):
        raise InvalidInput("--name: give the business's name (1-200 characters)")
    if given.get("timezone") == "":
        raise InvalidInput("--timezone: a client always has a time zone")
    if len(given.get("address") or "") > 300:
        raise InvalidInput("--address: at most 300 characters")
    checked: dict[str, str | None] = {}
    for key, value in given.items():
        scratch: dict[str, Any] = {}
        try:
            setters()[key](scratch, key, value.strip())
        except ValueError as exc:
            raise InvalidInput(f"--{key}: {exc}") from None
        checked[key] = scratch["business"][key]
    return checked


def update_client(
    engine: Engine, slug: str, facts: Mapping[str, str | None], *, actor: str
) -> dict[str, Any]:
    """Set business facts on the workspace and every one of its bots, in one transaction:
    each bot's config version moves (daemons reload it) and each change is audited."""
    from tcai.bots.config import BotConfig
    from tcai.templates.files import format_loc

    checked = _checked_facts(facts)
    assignments = [f"{key}={value or ''}" for key, value in checked.items()]
    with session_scope(engine) as session:
        workspace = get_client(session, slug, lock=True)
        before_ws = {key: getattr(workspace, column) for key, column in WORKSPACE_COLUMNS.items()}
        bots_changed: list[dict[str, Any]] = []
        for bot in _bots(session, workspace, lock=True):
            before_doc = copy.deepcopy(bot.config)
            doc, _origins = apply_assignments(before_doc, assignments)
            try:
                config = BotConfig.model_validate(doc)
            except ValidationError as exc:
                lines = [f"{format_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]
                raise InvalidInput(
                    f"bot {bot.bot_id}: the new facts are invalid; nothing changed", details=lines
                ) from None
            after_doc = config.model_dump(mode="json")
            old, new = before_doc.get("business", {}), after_doc["business"]
            changed = [key for key in checked if old.get(key) != new.get(key)]
            if "name" in checked and bot.name == workspace.name and bot.name != checked["name"]:
                bot.name = str(checked["name"])
                changed.append("bot.name")
            if not changed:
                continue
            save_config(
                session,
                bot,
                after_doc,
                actor=actor,
                workspace_id=workspace.id,
                before={f"business.{k}": old.get(k) for k in checked if k in changed},
                after={f"business.{k}": new.get(k) for k in checked if k in changed},
                reason="tcai clients update",
            )
            bots_changed.append(
                {"bot_id": bot.bot_id, "config_version": bot.config_version, "changed": changed}
            )
        for key, column in WORKSPACE_COLUMNS.items():
            if key in checked:
                setattr(workspace, column, checked[key])
        after_ws = {key: getattr(workspace, column) for key, column in WORKSPACE_COLUMNS.items()}
        ws_changed = [key for key in WORKSPACE_COLUMNS if before_ws[key] != after_ws[key]]
        if ws_changed:
            workspace.updated_at = utcnow()
            session.add(workspace)
        if ws_changed or bots_changed:
            record_audit(
                session,
                actor=actor,
                action="client.update",
                target=workspace.slug,
                workspace_id=workspace.id,
                before={key: before_ws[key] for key in ws_changed},
                after={
                    **{key: after_ws[key] for key in ws_changed},
                    "bots": [b["bot_id"] for b in bots_changed],
                },
            )
        return {
            "client_id": workspace.slug,
            "changed": bool(ws_changed or bots_changed),
            "facts": checked,
            "workspace_changed": ws_changed,
            "bots": bots_changed,
        }


# ---- suspend and resume --------------------------------------------------------------


def _pause_for_suspension(bot: Bot, reason: str, actor: str, now: datetime) -> None:
    bot.status = "paused"
    bot.paused_reason = (SUSPENDED_PREFIX + reason)[:MAX_REASON]
    bot.paused_by, bot.paused_at, bot.updated_at = actor, now, now


def is_paused_by_suspension(bot: Bot) -> bool:
    return bot.status == "paused" and (bot.paused_reason or "").startswith(SUSPENDED_PREFIX)


def suspend_client(
    engine: Engine, slug: str, *, reason: str | None, actor: str, demo_safe_mode: bool = False
) -> dict[str, Any]:
    """Suspend the client: workspace `suspended` (visitors get 403) and every active bot
    paused with the reason, audited, in every daemon within two seconds."""
    why = (reason or "").strip()
    if not why:
        raise UsageError('say why: --reason "..." (it is shown to operators and audited)')
    with session_scope(engine) as session:
        workspace = get_client(session, slug, lock=True)
        if workspace.status in ("suspended", "cancelled"):
            raise Conflict(
                f"client '{workspace.slug}' is already {workspace.status}; nothing changed"
                + (
                    f" (`tcai clients resume {workspace.slug}` lifts a suspension)"
                    if workspace.status == "suspended"
                    else ""
                )
            )
        ensure_not_demo(
            workspace.slug, workspace.status, demo_safe_mode=demo_safe_mode, action="suspend"
        )
        now, before = utcnow(), workspace.status
        workspace.status, workspace.updated_at = "suspended", now
        session.add(workspace)
        paused, left = [], []
        for bot in _bots(session, workspace, lock=True):
            if bot.status == "active":
                prior = {"status": bot.status, "paused_reason": bot.paused_reason}
                _pause_for_suspension(bot, why, actor, now)
                session.add(bot)
                record_audit(
                    session,
                    actor=actor,
                    action="bot.disable",
                    target=bot.bot_id,
                    workspace_id=workspace.id,
                    before=prior,
                    after={"status": bot.status, "paused_reason": bot.paused_reason},
                    reason=why,
                )
                paused.append(bot.bot_id)
            else:
                left.append(
                    {"bot_id": bot.bot_id, "status": bot.status, "paused_reason": bot.paused_reason}
                )
            raise_signal(session, bot.bot_id)
        record_audit(
            session,
            actor=actor,
            action="client.suspend",
            target=workspace.slug,
            workspace_id=workspace.id,
            before={"status": before},
            after={"status": "suspended", "paused_bots": paused},
            reason=why[:MAX_REASON],
        )
        return {
            "client_id": workspace.slug,
            "status": workspace.status,
            "previous_status": before,
            "reason": why,
            "paused_bots": paused,
            "already_stopped": left,
        }


def resume_client(engine: Engine, slug: str, *, actor: str) -> dict[str, Any]:
    """Lift a suspension: workspace `active`, and the bots the suspension paused active
    again; a bot paused for another reason stays paused."""
    with session_scope(engine) as session:
        workspace = get_client(session, slug, lock=True)
        if workspace.status != "suspended":
            raise Conflict(
                f"client '{workspace.slug}' is {workspace.status}, not suspended; nothing to resume"
            )
        now = utcnow()
        workspace.status, workspace.updated_at = "active", now
        session.add(workspace)
        resumed, still_paused = [], []
        for bot in _bots(session, workspace, lock=True):
            if is_paused_by_suspension(bot):
                prior = {"status": bot.status, "paused_reason": bot.paused_reason}
                bot.status, bot.paused_reason, bot.paused_by, bot.paused_at = (
                    "active",
                    None,
                    None,
                    None,
                )
                bot.updated_at = now
                session.add(bot)
                record_audit(
                    session,
                    actor=actor,
                    action="bot.enable",
                    target=bot.bot_id,
                    workspace_id=workspace.id,
                    before=prior,
                    after={"status": "active", "paused_reason": None},
                    reason="tcai clients resume",
                )
                resumed.append(bot.bot_id)
            elif bot.status == "paused":
                still_paused.append({"bot_id": bot.bot_id, "paused_reason": bot.paused_reason})
            raise_signal(session, bot.bot_id)
        record_audit(
            session,
            actor=actor,
            action="client.resume",
            target=workspace.slug,
            workspace_id=workspace.id,
            before={"status": "suspended"},
            after={"status": "active", "resumed_bots": resumed},
        )
        return {
            "client_id": workspace.slug,
            "status": workspace.status,
            "resumed_bots": resumed,
            "still_paused": still_paused,
        }


# ---- plan ----------------------------------------------------------------------------


def change_plan(
    engine: Engine, slug: str, plan: str, *, plans: Quotas, actor: str
) -> dict[str, Any]:
    """Move the client to another plan (its monthly quotas), audited; daemons reload its
    bots, whose cached plan decides the quota of the next message."""
    wanted = plan.strip().lower()
    if wanted not in plans:
        raise UsageError(f"unknown plan '{plan}'; plans: {_plan_list(plans)}")
    with session_scope(engine) as session:
        workspace = get_client(session, slug, lock=True)
        before = workspace.plan
        if before != wanted:
            workspace.plan, workspace.updated_at = wanted, utcnow()
            session.add(workspace)
            for bot in _bots(session, workspace):
                raise_signal(session, bot.bot_id)
            record_audit(
                session,
                actor=actor,
                action="client.plan",
                target=workspace.slug,
                workspace_id=workspace.id,
                before={"plan": before, "quotas": _quotas(plans, before)},
                after={"plan": wanted, "quotas": _quotas(plans, wanted)},
            )
        return {
            "client_id": workspace.slug,
            "plan": wanted,
            "previous_plan": before,
            "changed": before != wanted,
            "quotas": _quotas(plans, wanted),
        }


# ---- delete --------------------------------------------------------------------------


def default_export_path(slug: str, now: datetime | None = None) -> Path:
    """`./tcai-client-SLUG-<UTC time>.json`; the slug as typed, reduced to a file name."""
    stamp = (now or utcnow()).strftime("%Y%m%dT%H%M%SZ")
    name = re.sub(r"[^a-z0-9_-]", "_", slug.strip().lower())
    return Path(f"tcai-client-{name}-{stamp}.json")


def check_export_path(path: Path) -> None:
    """Refuse an export path that exists or whose folder does not (before any work)."""
    if path.exists():
        raise UsageError(f"--export: {path} already exists; name a new file")
    if not path.parent.is_dir():
        raise UsageError(f"--export: folder {path.parent} does not exist")


def _write_export(path: Path, document: dict[str, Any]) -> tuple[int, str]:
    """Write the export owner-only (0600), never over an existing file, and fsync it
    before anything is deleted; returns its size and sha256."""
    data = (json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"--export: {path} already exists; name a new file") from None
    except OSError as exc:
        raise UsageError(f"--export: cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise UsageError(f"--export: cannot write {path}: {exc.strerror}") from None
    return len(data), hashlib.sha256(data).hexdigest()


def delete_client(
    engine: Engine,
    slug: str,
    *,
    export_path: Path,
    force: bool = False,
    actor: str,
    demo_safe_mode: bool = False,
) -> dict[str, Any]:
    """Export the client to `export_path`, then delete every row it owns, in one
    transaction; refuses while a bot is live unless `force`. Pending deliveries are
    dropped (they are in the export)."""
    check_export_path(export_path)
    with session_scope(engine) as session:
        workspace = get_client(session, slug, lock=True)
        assert workspace.id is not None
        ensure_not_demo(
            workspace.slug, workspace.status, demo_safe_mode=demo_safe_mode, action="delete"
        )
        bots = _bots(session, workspace, lock=True)
        serving = workspace.status in SERVING
        live = [bot.bot_id for bot in bots if serving and bot.status == "active"]
        if live and not force:
            raise Conflict(
                f"client '{workspace.slug}' has live bot(s): {', '.join(live)}; suspend it "
                f"first (`tcai clients suspend {workspace.slug} --reason ...`) or add --force"
            )
        lock_workspace(session, workspace.id)
        document = export_workspace(session, workspace)
        pending = [row for row in document["records"]["outbox"] if row["status"] == "pending"]
        size, digest = _write_export(export_path, document)
        for bot in bots:
            raise_signal(session, bot.bot_id)
        delete_workspace(session, workspace.id)
        summary = {
            "client_id": workspace.slug,
            "deleted": True,
            "forced": bool(live),
            "live_bots": live,
            "bots": [bot.bot_id for bot in bots],
            "counts": document["counts"],
            "total": document["total"],
            "pending_deliveries_dropped": len(pending),
            "dropped_event_ids": [row["event_id"] for row in pending],
            "export": {"path": str(export_path), "bytes": size, "sha256": digest},
        }
        record_audit(
            session,
            actor=actor,
            action="client.delete",
            target=workspace.slug,
            workspace_id=None,  # the workspace's own audit rows go with it (they are exported)
            before={
                "name": workspace.name,
                "plan": workspace.plan,
                "status": workspace.status,
                "bots": summary["bots"],
                "counts": document["counts"],
            },
            after={
                "export": summary["export"],
                "pending_deliveries_dropped": len(pending),
                "forced": bool(live),
            },
        )
    return summary


# ---- a lead's status -----------------------------------------------------------------


def parse_lead_status(word: str) -> str:
    """new, contacted, won (stored as converted) or lost; the stored statuses too."""
    lowered = word.strip().lower()
    if lowered in LEAD_WORDS:
        return LEAD_WORDS[lowered]
    if lowered in LEAD_STATUSES:
        return lowered
    raise UsageError(
        f"unknown lead status '{word}'; use new, contacted, won or lost "
        f"(stored statuses: {', '.join(LEAD_STATUSES)})"
    )


def change_lead_status(
    engine: Engine, lead_id: int, word: str, *, actor: str, client: str | None = None
) -> dict[str, Any]:
    """Move a lead, found by its id (within `client` when given), to a status; audited
    through `tcai.records.leads.set_lead_status`, the portal's own path."""
    status = parse_lead_status(word)
    with session_scope(engine, read_only=True) as session:
        query = select(Lead, Workspace).join(Workspace).where(Lead.id == lead_id)
        if client is not None:
            get_client(session, client)
            query = query.where(Workspace.slug == client.strip())
        row = session.exec(query).first()
        if row is None:
            where = f" of client '{client}'" if client is not None else ""
            raise NotFound(f"no lead {lead_id}{where}; see tcai leads list --workspace <client>")
        lead, workspace = row
        assert workspace.id is not None
        previous = lead.status
    changed = set_lead_status(engine, workspace.id, lead_id, status, actor=actor)
    return {
        **changed,
        "client_id": workspace.slug,
        "previous_status": previous,
        "changed": previous != status,
    }
