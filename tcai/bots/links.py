"""Every booking link a bot's config holds, judged for the provider it is claimed for.

A bot's own links (`booking_url`, `service_url.<Service>`) and the links its template
snapshot carries (catalogue items, appointment types, CTAs, the template's booking
link) are all claimed for the bot's `booking.provider`: with a provider named, each must
be on that provider's domain (`tcai.templates.providers.classify_booking_url` decides). `bots set`
refuses a change that leaves a bot's own link failing; the go-live check reports every
link that fails or is a placeholder. This module does not decide what a visitor is sent
to; `tcai.chat.booking` does, asking the same judge.
"""

from __future__ import annotations

from dataclasses import dataclass

from tcai.bots.config import BotConfig
from tcai.templates.providers import UrlVerdict, classify_booking_url, load_registry


@dataclass(frozen=True)
class BookingLink:
    where: str
    """Where the link lives, as an operator reads it ("booking_url", "catalogue item
    'Classic Fade'")."""
    url: str
    verdict: UrlVerdict
    setting: str | None
    """The `tcai bots set` key that changes it; None for the template's own links."""
    service: str | None = None
    overridden: bool = False
    """A template link the bot's own `service_url.<Service>` replaces."""

    @property
    def usable(self) -> bool:
        return self.verdict.ok and not self.verdict.placeholder

    @property
    def from_template(self) -> bool:
        return self.setting is None


def booking_links(config: BotConfig) -> list[BookingLink]:
    """The bot's own links first, then its template's, each with its verdict."""
    claimed = config.booking.provider
    booking = config.template.booking
    service_urls = config.booking.service_urls
    links: list[BookingLink] = []

    def add(
        where: str,
        url: str | None,
        setting: str | None,
        service: str | None = None,
        overridden: bool = False,
    ) -> None:
        if url:
            verdict = classify_booking_url(url, claimed)
            links.append(BookingLink(where, url, verdict, setting, service, overridden))

    add("booking_url", config.booking.url, "booking_url")
    for service, url in service_urls.items():
        add(f"service_url.{service}", url, f"service_url.{service}", service=service)
    for item in config.template.catalog:
        add(
            f"catalogue item '{item.name}'",
            item.booking_url,
            None,
            service=item.name,
            overridden=item.name in service_urls,
        )
    for appt in booking.appointment_types:
        add(f"appointment type '{appt.id}'", appt.external_url_override, None)
    for cta in booking.ctas:
        add(f"CTA '{cta.id}'", cta.external_url, None)
    add("the template's booking link", booking.booking_url, None)
    return links


def own_link_problems(config: BotConfig) -> list[str]:
    """Why the bot's own booking settings cannot stand (`setting: reason` lines)."""
    problems: list[str] = []
    provider = config.booking.provider
    if provider is not None and load_registry().get(provider) is None:
        known = ", ".join(p.name for p in load_registry().providers)
        problems.append(f"booking_provider: '{provider}' is not a known provider ({known})")
        return problems
    for link in booking_links(config):
        if link.from_template:
            continue
        if not link.verdict.ok:
            problems.append(f"{link.setting}: booking URL {link.verdict.reason}")
        elif link.verdict.placeholder:
            problems.append(f"{link.setting}: is a placeholder; use the business's real link")
    return problems
