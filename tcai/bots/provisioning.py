"""Provisioning: a workspace and its bot from a template, in one transaction.

The one path that turns a template into a live bot (the system tcai replaces had several,
and one of them dropped every bot's booking profile and crisis rules). Input is checked
field by field before anything is written; a duplicate slug or bot id leaves nothing
behind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from tcai.audit import record_audit
from tcai.bots.config import BookingSettings, BotConfig, BusinessFacts, check_timezone
from tcai.config import parse_origin
from tcai.db.engine import session_scope
from tcai.db.models import WORKSPACE_PLANS, Bot, Workspace
from tcai.errors import Conflict, InvalidInput
from tcai.templates.providers import classify_booking_url, load_registry
from tcai.templates.store import get_active_template
from tcai.text.contacts import normalise_email, normalise_phone

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{1,62}$")
BOT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{1,79}$")


@dataclass
class ClientRequest:
    template: str
    slug: str
    name: str
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    website: str | None = None
    timezone: str = "America/New_York"
    booking_url: str | None = None
    booking_provider: str | None = None
    allowed_origins: list[str] = field(default_factory=list)
    plan: str = "free"
    bot_id: str | None = None
    status: str = "active"


def check_website(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or "." not in parts.hostname:
        raise ValueError(f"'{url}' is not a web address like https://www.example.com")
    return url.strip()


def check_booking_url(url: str, provider: str | None = None) -> tuple[str, str | None]:
    """A booking URL an operator sets: usable now (no placeholder) and, when `provider`
    is named, on that provider's domain; returns the provider it is labelled with."""
    verdict = classify_booking_url(url, provider)
    if not verdict.ok:
        raise ValueError(f"booking URL {verdict.reason}")
    if verdict.placeholder:
        raise ValueError("is a placeholder; use the business's real booking link")
    return url.strip(), verdict.provider


def check_provider(name: str) -> str:
    provider = load_registry().get(name)
    if provider is None:
        known = ", ".join(p.name for p in load_registry().providers)
        raise ValueError(f"'{name}' is not a known provider ({known})")
    return provider.name


def _field(flag: str, check: Any, value: Any) -> Any:
    try:
        return check(value)
    except ValueError as exc:
        raise InvalidInput(f"{flag}: {exc}") from None


def check_phone(value: str) -> str:
    phone = normalise_phone(value)
    if phone is None:
        raise ValueError(f"'{value}' is not a valid phone number")
    return phone


def check_email(value: str) -> str:
    email = normalise_email(value)
    if email is None:
        raise ValueError(f"'{value}' is not a usable e-mail address")
    return email


def build_bot_config(request: ClientRequest, template_doc: Any) -> tuple[BotConfig, list[str]]:
    """Validate every field of the request; return the bot's config and its origins."""
    if not SLUG.match(request.slug):
        raise InvalidInput(
            f"--slug: '{request.slug}' must be 2-63 characters of a-z, 0-9, '-' or '_', "
            "starting with a letter or digit"
        )
    bot_id = request.bot_id or f"{request.slug}_main"
    if not BOT_ID.match(bot_id):
        raise InvalidInput(f"--bot-id: '{bot_id}' must be 2-80 characters of a-z, 0-9, '-', '_'")
    if request.plan not in WORKSPACE_PLANS:
        raise InvalidInput(f"--plan: must be one of {', '.join(WORKSPACE_PLANS)}")
    if not request.name.strip() or len(request.name) > 200:
        raise InvalidInput("--name: give the business's name (1-200 characters)")
    phone = _field("--phone", check_phone, request.phone) if request.phone else None
    email = _field("--email", check_email, request.email) if request.email else None
    website = _field("--website", check_website, request.website) if request.website else None
    timezone = _field("--timezone", check_timezone, request.timezone)
    booking_url, provider = (None, None)
    if request.booking_provider:
        provider = _field("--booking-provider", check_provider, request.booking_provider)
    if request.booking_url:
        claimed = provider
        booking_url, provider = _field(
            "--booking-url", lambda url: check_booking_url(url, claimed), request.booking_url
        )
    origins = [_field("--allowed-origin", parse_origin, o) for o in request.allowed_origins]
    if request.address is not None and len(request.address) > 300:
        raise InvalidInput("--address: at most 300 characters")
    config = BotConfig(
        template=template_doc,
        business=BusinessFacts(
            name=request.name.strip(),
            phone=phone,
            email=email,
            address=(request.address or "").strip() or None,
            website=website,
            timezone=timezone,
        ),
        booking=BookingSettings(url=booking_url, provider=provider),
    )
    return config, sorted(set(origins))


@dataclass(frozen=True)
class Provisioned:
    workspace_slug: str
    bot_id: str
    template_id: str


def create_client(engine: Engine, request: ClientRequest, *, actor: str = "cli") -> Provisioned:
    with session_scope(engine) as session:
        template = get_active_template(session, request.template)
        config, origins = build_bot_config(request, template)
        bot_id = request.bot_id or f"{request.slug}_main"
        if session.exec(select(Workspace.id).where(Workspace.slug == request.slug)).first():
            raise Conflict(f"a client with slug '{request.slug}' already exists; nothing written")
        if session.exec(select(Bot.id).where(Bot.bot_id == bot_id)).first():
            raise Conflict(f"a bot with id '{bot_id}' already exists; nothing written")
        workspace = Workspace(
            slug=request.slug,
            name=request.name.strip(),
            plan=request.plan,
            status=request.status,
            timezone=config.business.timezone,
            contact_phone=config.business.phone,
            contact_email=config.business.email,
        )
        session.add(workspace)
        session.flush()
        assert workspace.id is not None
        bot = Bot(
            bot_id=bot_id,
            workspace_id=workspace.id,
            template_id=template.id,
            name=request.name.strip(),
            config=config.model_dump(mode="json"),
            allowed_origins=origins,
        )
        session.add(bot)
        try:
            session.flush()
        except IntegrityError:
            raise Conflict(
                f"'{request.slug}' or '{bot_id}' was created meanwhile; nothing written"
            ) from None
        record_audit(
            session,
            actor=actor,
            action="client.create",
            target=bot_id,
            workspace_id=workspace.id,
            after={"slug": request.slug, "template_id": template.id, "plan": request.plan},
        )
        return Provisioned(request.slug, bot_id, template.id)
