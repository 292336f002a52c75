"""The booking decision: redirect to a safe external page, or ask the team to call back.

Order of preference for an external bot: the booking link of a service the visitor
named, then the bot's booking link, then an appointment type's own link. Each candidate
must pass `classify_booking_url` for the bot's booking provider (https, no credentials,
not a payment page, on that provider's domain when one is named) and must not be a
placeholder. The redirect is labelled with the provider the verdict found, never with a
configured name the link does not live up to. With none left — or for an internal bot —
the decision is the template's failsafe pivot: an internal appointment request and a
follow-up promise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from tcai.bots.config import BotConfig
from tcai.db.engine import session_scope
from tcai.db.models import BookingEvent, Bot, Conversation, Lead
from tcai.errors import InvalidMessage
from tcai.templates.providers import classify_booking_url
from tcai.templates.schema import AppointmentType
from tcai.text.normalise import contains_phrase


@dataclass(frozen=True)
class BookingDecision:
    handling: Literal["external", "internal"]
    appointment_type: str
    label: str
    url: str | None = None
    provider: str | None = None
    reason: str = ""
    service: str | None = None


def _usable(url: str | None, provider: str | None) -> tuple[bool, str | None]:
    if not url:
        return False, None
    verdict = classify_booking_url(url, provider)
    return verdict.ok and not verdict.placeholder, verdict.provider


def _primary_type(config: BotConfig) -> AppointmentType | None:
    booking = config.template.booking
    primary = next((c for c in booking.ctas if c.kind == "primary"), None)
    if primary and primary.appointment_type:
        return config.template.get_appointment_type(primary.appointment_type)
    return None


def _named_service(config: BotConfig, text: str) -> str | None:
    names = [*config.booking.service_urls, *(item.name for item in config.template.catalog)]
    names += [service.name for service in config.services]
    # Longest name first, so "Haircut + Beard Combo" wins over "Haircut".
    for name in sorted(names, key=len, reverse=True):
        if contains_phrase(text, name):
            return name
    return None


def decide_booking(config: BotConfig, text: str = "") -> BookingDecision:
    booking = config.template.booking
    primary = _primary_type(config)
    pivot_id = booking.failsafe.pivot_appointment_type
    pivot = config.template.get_appointment_type(pivot_id)
    pivot_label = pivot.label if pivot else "Request a callback"
    service = _named_service(config, text) if text else None

    if booking.mode == "internal":
        chosen = primary if primary and primary.mode == "internal" else pivot
        return BookingDecision(
            "internal",
            chosen.id if chosen else pivot_id,
            chosen.label if chosen else pivot_label,
            reason="internal booking",
            service=service,
        )

    candidates: list[tuple[str | None, str]] = []
    if service:
        candidates.append((config.booking.service_urls.get(service), f"service '{service}'"))
        item = next((c for c in config.template.catalog if c.name == service), None)
        if item is not None:
            candidates.append((item.booking_url, f"catalogue item '{service}'"))
    candidates.append((config.booking.url, "the bot's booking link"))
    if primary is not None:
        candidates.append((primary.external_url_override, f"appointment type '{primary.id}'"))
    candidates.append((booking.booking_url, "the template's booking link"))

    label = primary.label if primary else "Book now"
    for url, source in candidates:
        ok, provider = _usable(url, config.booking.provider)
        if ok and url:
            return BookingDecision(
                "external",
                primary.id if primary else pivot_id,
                label,
                url=url.strip(),
                provider=provider,
                reason=f"redirect via {source}",
                service=service,
            )
    return BookingDecision(
        "internal",
        pivot_id,
        pivot_label,
        reason="no valid external booking link: failsafe pivot to an internal request",
        service=service,
    )


def record_click(engine: Engine, bot_id: str, session_id: str | None, url: str) -> None:
    """A visitor followed a booking link: a `booking_event` (external) and, when the
    conversation has a lead, the lead marked redirected. Only links tcai would send."""
    verdict = classify_booking_url(url)
    if not verdict.ok:
        raise InvalidMessage("that is not a booking link tcai would send a visitor to")
    with session_scope(engine) as session:
        bot = session.exec(select(Bot).where(col(Bot.bot_id) == bot_id)).one()
        conversation = None
        if session_id:
            conversation = session.exec(
                select(Conversation).where(
                    Conversation.bot_id == bot.id, Conversation.session_id == session_id
                )
            ).first()
        lead_id = conversation.lead_id if conversation else None
        session.add(
            BookingEvent(
                workspace_id=bot.workspace_id,
                bot_id=bot.id or 0,
                conversation_id=conversation.id if conversation else None,
                lead_id=lead_id,
                handling="external",
                provider=verdict.provider,
                url=url[:2000],
            )
        )
        if lead_id is not None:
            lead = session.get(Lead, lead_id)
            if lead is not None and lead.booking_status == "none":
                lead.booking_status = "redirected"
                session.add(lead)
