"""Bots and clients: look-ups, summaries and audited configuration changes.

`change_bot` is the one way a bot's settings change: `key=value` assignments (each key a
row of `setters()`) and/or a partial document merged into the config, validated as a
whole, `config_version` bumped, a cache signal raised and an audit row written, all in
one transaction.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

if TYPE_CHECKING:
    from tcai.bots.config import BotConfig

from tcai.audit import record_audit
from tcai.bots.signal import raise_signal
from tcai.config import parse_origin
from tcai.db.engine import session_scope
from tcai.db.models import Bot, Workspace
from tcai.db.types import utcnow
from tcai.errors import InvalidInput, NotFound, UsageError


def get_bot(
    session: Session, bot_id: str, *, workspace_id: int | None = None
) -> tuple[Bot, Workspace]:
    """The bot and its workspace; with `workspace_id`, a bot of another workspace is
    `NotFound` exactly like one that does not exist (the portal's scoping)."""
    query = select(Bot, Workspace).join(Workspace).where(col(Bot.bot_id) == bot_id.strip())
    if workspace_id is not None:
        query = query.where(col(Bot.workspace_id) == workspace_id)
    row = session.exec(query).first()
    if row is None:
        if workspace_id is not None:
            raise NotFound("There is no such assistant in this workspace.")
        raise NotFound(f"no bot '{bot_id}'; see tcai bots list")
    return row[0], row[1]


@dataclass(frozen=True)
class WorkspaceBot:
    """A bot as the portal shows it: its summary and its validated config."""

    summary: dict[str, Any]
    config: BotConfig


def _config_class() -> type[BotConfig]:
    from tcai.bots.config import BotConfig

    return BotConfig


def workspace_bots(engine: Engine, workspace_id: int) -> list[WorkspaceBot]:
    """The bots of one workspace, by id."""
    with session_scope(engine) as session:
        rows = session.exec(
            select(Bot, Workspace)
            .join(Workspace)
            .where(col(Bot.workspace_id) == workspace_id)
            .order_by(col(Bot.bot_id))
        ).all()
        return [
            WorkspaceBot(bot_summary(bot, ws), _config_class().model_validate(bot.config))
            for bot, ws in rows
        ]


def bot_summary(bot: Bot, workspace: Workspace) -> dict[str, Any]:
    return {
        "bot_id": bot.bot_id,
        "client_id": workspace.slug,
        "name": bot.name,
        "status": bot.status,
        "template_id": bot.template_id,
        "config_version": bot.config_version,
        "allowed_origins": list(bot.allowed_origins or []),
        "paused_reason": bot.paused_reason,
        "workspace_status": workspace.status,
        "plan": workspace.plan,
    }


def list_bots(session: Session, client_id: str | None = None) -> list[dict[str, Any]]:
    query = select(Bot, Workspace).join(Workspace).order_by(col(Workspace.slug), col(Bot.bot_id))
    if client_id:
        query = query.where(Workspace.slug == client_id)
    return [bot_summary(bot, ws) for bot, ws in session.exec(query)]


def list_clients(session: Session) -> list[dict[str, Any]]:
    counts: dict[int | None, int] = dict(
        session.exec(
            select(col(Bot.workspace_id), sa.func.count()).group_by(col(Bot.workspace_id))
        ).all()
    )
    return [
        {
            "client_id": ws.slug,
            "name": ws.name,
            "plan": ws.plan,
            "status": ws.status,
            "timezone": ws.timezone,
            "bots": counts.get(ws.id, 0),
            "created_at": ws.created_at.isoformat(),
        }
        for ws in session.exec(select(Workspace).order_by(col(Workspace.slug)))
    ]


def bot_choices(engine: Engine, prefix: str = "", *, limit: int = 200) -> list[tuple[str, str]]:
    """Bot ids starting with `prefix`, each with a one-line description, for shell
    completion (docs/cli.md, "Shell completion"): three columns, never the config."""
    query = (
        select(col(Bot.bot_id), col(Bot.name), col(Bot.status), col(Workspace.slug))
        .join(Workspace)
        .where(col(Bot.bot_id).startswith(prefix, autoescape=True))
        .order_by(col(Bot.bot_id))
        .limit(limit)
    )
    with session_scope(engine, read_only=True) as session:
        return [
            (bot_id, f"{name} ({slug}, {status})")
            for bot_id, name, status, slug in session.exec(query)
        ]


def client_choices(engine: Engine, prefix: str = "", *, limit: int = 200) -> list[tuple[str, str]]:
    """Client ids (workspace slugs) starting with `prefix`, each with its name and status,
    for shell completion (docs/cli.md, "Shell completion")."""
    query = (
        select(col(Workspace.slug), col(Workspace.name), col(Workspace.status))
        .where(col(Workspace.slug).startswith(prefix, autoescape=True))
        .order_by(col(Workspace.slug))
        .limit(limit)
    )
    with session_scope(engine, read_only=True) as session:
        return [(slug, f"{name} ({status})") for slug, name, status in session.exec(query)]


def set_bot_status(
    engine: Engine,
    bot_id: str,
    *,
    enabled: bool,
    reason: str | None,
    actor: str = "cli",
    workspace_id: int | None = None,
) -> dict[str, Any]:
    """The kill switch: pause or resume one bot, audited, in every process within 2 s.
    With `workspace_id`, only a bot of that workspace (else `NotFound`)."""
    if not enabled and not (reason and reason.strip()):
        raise UsageError('say why: --reason "..." (it is shown to operators and audited)')
    with session_scope(engine) as session:
        bot, workspace = get_bot(session, bot_id, workspace_id=workspace_id)
        before = {"status": bot.status, "paused_reason": bot.paused_reason}
        if enabled:
            bot.status, bot.paused_reason, bot.paused_by, bot.paused_at = "active", None, None, None
        else:
            bot.status, bot.paused_reason = "paused", reason.strip()[:500] if reason else None
            bot.paused_by, bot.paused_at = actor, utcnow()
        bot.updated_at = utcnow()
        session.add(bot)
        raise_signal(session, bot.bot_id)
        record_audit(
            session,
            actor=actor,
            action="bot.enable" if enabled else "bot.disable",
            target=bot.bot_id,
            workspace_id=workspace.id,
            before=before,
            after={"status": bot.status, "paused_reason": bot.paused_reason},
            reason=reason,
        )
        return bot_summary(bot, workspace)


def invalidate_caches(engine: Engine, bot_id: str | None = None, *, actor: str = "cli") -> None:
    """Force every running daemon to reload one bot, or all of them."""
    with session_scope(engine) as session:
        workspace_id = None
        if bot_id is not None:
            bot, workspace = get_bot(session, bot_id)
            bot_id, workspace_id = bot.bot_id, workspace.id
        raise_signal(session, bot_id)
        record_audit(
            session,
            actor=actor,
            action="cache.invalidate",
            target=bot_id or "*",
            workspace_id=workspace_id,
        )


# ---- key=value settings -------------------------------------------------------------

Doc = dict[str, Any]
Setter = Callable[[Doc, str, str], None]


@dataclass(frozen=True)
class Setting:
    """One `key=value` setting: where the value goes in the document, the validator it
    passes first, and the rule `tcai bots set --help` shows for it (docs/cli.md)."""

    path: tuple[str, ...]
    convert: Callable[[str], Any]
    rule: str

    def __call__(self, doc: Doc, _key: str, value: str) -> None:
        node = doc
        for part in self.path[:-1]:
            node = node.setdefault(part, {})
        node[self.path[-1]] = None if value == "" else self.convert(value)


def _one_of(model: type[Any], name: str) -> str:
    """'one of a, b': the choices a `Literal` field of a config model allows, so a rule
    never repeats them by hand."""

    def choices(annotation: Any) -> list[str]:
        if get_origin(annotation) is Literal:
            return [str(arg) for arg in get_args(annotation)]
        return [choice for arg in get_args(annotation) for choice in choices(arg)]

    return "one of " + ", ".join(choices(model.model_fields[name].annotation))


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _list(convert: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    return lambda value: [convert(v.strip()) for v in value.split(",") if v.strip()]


def _webhook(value: str) -> str:
    from tcai.bots.provisioning import check_website

    url = check_website(value)
    if not url.startswith("https://"):
        raise ValueError("webhooks must use https")
    return url


def _secret(value: str) -> str:
    if len(value) < 16:
        raise ValueError("must be at least 16 characters")
    return value


def _booking_url(value: str) -> str:
    from tcai.bots.provisioning import check_booking_url

    return check_booking_url(value)[0]


def _hours(doc: Doc, key: str, value: str) -> None:
    """hours.mon … hours.sun: spans like 09:00-17:30, comma-separated, or closed"""
    from tcai.bots.config import WEEKDAYS, parse_span

    day = key.split(".", 1)[1]
    if day not in WEEKDAYS:
        raise ValueError(f"unknown day '{day}'; use one of {', '.join(WEEKDAYS)}")
    spans = [] if value.strip().lower() in ("closed", "") else _list(str)(value)
    for span in spans:
        parse_span(span)
    doc.setdefault("business", {}).setdefault("hours", {})[day] = spans


def _service_url(doc: Doc, key: str, value: str) -> None:
    """service_url.<Service Name>: that service's booking link; empty removes it"""
    service = key.split(".", 1)[1].strip()
    if not service:
        raise ValueError("name the service: service_url.<Service Name>=https://...")
    urls = doc.setdefault("booking", {}).setdefault("service_urls", {})
    if value == "":
        urls.pop(service, None)
    else:
        urls[service] = _booking_url(value)


@functools.cache
def setters() -> dict[str, Setting]:
    """The settable keys and their validators (`tcai bots set KEY=VALUE`), built on first
    use: the validators pull in provisioning and phone numbers, which the kill switch and
    the listings do not need (docs/cli.md, "Start-up: what a command imports")."""
    from tcai.bots.config import BotConfig, WidgetLook, check_timezone
    from tcai.bots.provisioning import (
        check_email,
        check_phone,
        check_provider,
        check_website,
    )

    business, booking, widget = "business", "booking", "widget"
    return {
        "name": Setting((business, "name"), str, "the business's name, 1-200 characters"),
        "phone": Setting((business, "phone"), check_phone, "a phone number; stored as E.164"),
        "email": Setting((business, "email"), check_email, "an e-mail address; lower-cased"),
        "address": Setting((business, "address"), str, "free text"),
        "website": Setting(
            (business, "website"), check_website, "an http(s) address like https://shop.com"
        ),
        "timezone": Setting(
            (business, "timezone"), check_timezone, "an IANA zone like America/New_York"
        ),
        "booking_url": Setting(
            (booking, "url"),
            _booking_url,
            "the real booking link: https, no placeholder, not a payment page",
        ),
        "booking_provider": Setting(
            (booking, "provider"), check_provider, "a provider of tcai/data/providers.yaml"
        ),
        "behavior_preset": Setting(
            ("behavior_preset",), str, _one_of(BotConfig, "behavior_preset")
        ),
        "lead_capture": Setting(("lead_capture",), _bool, "true or false (yes/no, on/off, 1/0)"),
        "after_hours_message": Setting(
            ("after_hours_message",), str, "text shown outside opening hours"
        ),
        "after_hours_mode": Setting(
            ("after_hours_mode",), str, _one_of(BotConfig, "after_hours_mode")
        ),
        "crisis_keywords": Setting(
            ("crisis_keywords",),
            _list(str),
            "comma-separated phrases, added to the template's and the platform's",
        ),
        "webhook_url": Setting(("webhook_url",), _webhook, "an https address for new leads"),
        "webhook_secret": Setting(("webhook_secret",), _secret, "at least 16 characters"),
        "notify_emails": Setting(
            ("notify_emails",), _list(check_email), "comma-separated e-mail addresses"
        ),
        "primary_color": Setting((widget, "primary_color"), str, "a hex colour like #1a73e8"),
        "welcome_message": Setting((widget, "welcome_message"), str, "the widget's greeting"),
        "position": Setting((widget, "position"), str, _one_of(WidgetLook, "position")),
    }


PREFIX_SETTERS: dict[str, Setter] = {"hours.": _hours, "service_url.": _service_url}
"""Keys with a part of their own (`hours.mon`); each setter's docstring is its rule."""
COLUMN_SETTINGS = {
    "allowed_origins": "comma-separated origins the widget may load on (replaces the list)"
}


def settable_keys() -> list[str]:
    return [*setters(), *(f"{p}<...>" for p in PREFIX_SETTERS), *COLUMN_SETTINGS]


def setting_rules() -> dict[str, str]:
    """Each key of `settable_keys()` with its rule in a few words, for `tcai bots set
    --help`: read from the setters themselves, so a new key brings its rule along."""
    prefixed = {
        f"{prefix}<...>": (setter.__doc__ or "").strip()
        for prefix, setter in PREFIX_SETTERS.items()
    }
    rules = {key: setting.rule for key, setting in setters().items()}
    return {**rules, **prefixed, **COLUMN_SETTINGS}


def _deep_merge(base: Doc, patch: Doc) -> Doc:
    merged = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass(frozen=True)
class BotChange:
    bot_id: str
    config_version: int
    changed: tuple[str, ...]


def _diff(before: Doc, after: Doc, prefix: str = "") -> list[str]:
    keys = sorted(set(before) | set(after))
    out: list[str] = []
    for key in keys:
        path = f"{prefix}{key}"
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            out.extend(_diff(old, new, path + "."))
        elif old != new:
            out.append(path)
    return out


def apply_assignments(document: Doc, assignments: list[str]) -> tuple[Doc, list[str] | None]:
    """Apply `key=value` pairs to a copy of `document`; origins are returned apart."""
    doc: Doc = copy.deepcopy(document)
    origins: list[str] | None = None
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"'{assignment}' is not key=value; keys: {', '.join(settable_keys())}")
        try:
            if key == "allowed_origins":
                origins = sorted(set(_list(parse_origin)(value)))
            elif key in setters():
                setters()[key](doc, key, value)
            elif prefix := next((p for p in PREFIX_SETTERS if key.startswith(p)), None):
                PREFIX_SETTERS[prefix](doc, key, value)
            else:
                raise UsageError(f"unknown setting '{key}'; keys: {', '.join(settable_keys())}")
        except ValueError as exc:
            raise InvalidInput(f"{key}: {exc}") from None
    return doc, origins


def change_bot(
    engine: Engine,
    bot_id: str,
    *,
    assignments: list[str] | None = None,
    patch: Doc | None = None,
    actor: str = "cli",
    reason: str | None = None,
    workspace_id: int | None = None,
) -> BotChange:
    """With `workspace_id`, only a bot of that workspace (else `NotFound`)."""
    from tcai.bots.config import BotConfig
    from tcai.bots.links import own_link_problems
    from tcai.templates.files import format_loc

    with session_scope(engine) as session:
        bot, workspace = get_bot(session, bot_id, workspace_id=workspace_id)
        before_doc: Doc = copy.deepcopy(bot.config)
        doc = _deep_merge(before_doc, patch or {})
        if "template" in (patch or {}):
            raise InvalidInput("the template snapshot cannot be edited; provision a new bot")
        doc, origins = apply_assignments(doc, assignments or [])
        try:
            config = BotConfig.model_validate(doc)
        except ValidationError as exc:
            lines = [f"{format_loc(e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)]
            raise InvalidInput(
                "the new settings are invalid; nothing changed", details=lines
            ) from None
        after_doc = config.model_dump(mode="json")
        changed = _diff(before_doc, after_doc)
        # Links are judged on the whole result, so a link and the provider it is claimed
        # for agree however they were changed (key=value, --file, or both at once).
        booking_changed = any(path.startswith("booking.") for path in changed)
        if booking_changed and (problems := own_link_problems(config)):
            raise InvalidInput(problems[0], details=problems[1:])
        if origins is not None and origins != list(bot.allowed_origins or []):
            changed.append("allowed_origins")
        if not changed:
            return BotChange(bot.bot_id, bot.config_version, ())
        before_view = {
            "config": BotConfig.model_validate(before_doc).public_dict(),
            "allowed_origins": list(bot.allowed_origins or []),
        }
        if origins is not None:
            bot.allowed_origins = origins
        save_config(
            session,
            bot,
            after_doc,
            actor=actor,
            workspace_id=workspace.id,
            reason=reason,
            before={k: _pick(before_view, k) for k in changed},
            after={
                k: _pick(
                    {
                        "config": config.public_dict(),
                        "allowed_origins": list(bot.allowed_origins or []),
                    },
                    k,
                )
                for k in changed
            },
        )
        return BotChange(bot.bot_id, bot.config_version, tuple(changed))


def save_config(
    session: Session,
    bot: Bot,
    doc: Doc,
    *,
    actor: str,
    workspace_id: int | None,
    before: Doc,
    after: Doc,
    reason: str | None = None,
) -> None:
    """A bot's new config document as its next version, in the caller's transaction: the
    version bumped, every daemon signalled, the change audited (one path for every edit)."""
    bot.config = doc
    bot.config_version += 1
    bot.updated_at = utcnow()
    session.add(bot)
    raise_signal(session, bot.bot_id)
    record_audit(
        session,
        actor=actor,
        action="bot.update",
        target=bot.bot_id,
        workspace_id=workspace_id,
        before=before,
        after=after,
        reason=reason,
    )


def _pick(view: Doc, path: str) -> Any:
    node: Any = view if path == "allowed_origins" else view["config"]
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node
