"""The demo's pages as a visitor sees them: the index of businesses by group, and each
business's one-page site built from its bot's facts (name, colours, services with their
catalogue prices, hours said like a person, address, phone, a booking button).

Only presentation: the facts come from `tcai.bots.demo.list_demo_sites`, the hours
phrasing from `tcai.chat.hours`, prices from `tcai.chat.offerings.say_price`. Colours are
turned into a stylesheet (`theme_css`) so the pages need no inline style; text in the
brand's colour, and white text on it, use the brand darkened to a contrast of ≥ 4.5:1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tcai.bots.demo import DemoSite
from tcai.chat.hours import Week
from tcai.chat.offerings import say_price

WHITE = "#ffffff"


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def ink(colour: str, background: str = WHITE) -> str:
    """`colour`, darkened just enough to be read as text on `background` (≥ 4.5:1);
    white text on it reads as well, so it is also the hero's background."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    for _ in range(40):
        candidate = f"#{r:02x}{g:02x}{b:02x}"
        if contrast(candidate, background) >= 4.5:
            return candidate
        r, g, b = int(r * 0.9), int(g * 0.9), int(b * 0.9)
    return "#111827"


def theme_css(sites: Sequence[DemoSite]) -> str:
    """One class per demo business with its brand colours as CSS custom properties."""
    rules = []
    for site in sites:
        brand = site.config.primary_color.lower()
        rules.append(f".brand-{site.client_id} {{ --brand: {brand}; --brand-ink: {ink(brand)}; }}")
    return "\n".join(rules) + "\n"


def locality(address: str | None) -> str | None:
    """ "21 Colorado Ave, Stuart, FL 34994" → "Stuart, FL"; a service area stays whole."""
    if not address:
        return None
    if address.lower().startswith("serving"):
        return address
    parts = [p.strip() for p in address.split(",") if p.strip()]
    if len(parts) < 3:
        return parts[-1] if parts else None
    state = parts[-1].split()[0] if parts[-1].split() else parts[-1]
    return f"{parts[-2]}, {state}"


@dataclass(frozen=True)
class Card:
    client_id: str
    name: str
    industry: str
    place: str | None


@dataclass(frozen=True)
class Group:
    label: str
    cards: tuple[Card, ...]


def demo_groups(sites: Sequence[DemoSite]) -> list[Group]:
    order: dict[str, list[Card]] = {}
    for site in sites:
        card = Card(
            site.client_id,
            site.config.business.name,
            site.config.template.business.type,
            locality(site.config.business.address),
        )
        order.setdefault(site.group, []).append(card)
    groups = [
        Group(label, tuple(sorted(cards, key=lambda c: c.name))) for label, cards in order.items()
    ]
    return sorted(groups, key=lambda g: g.label)


@dataclass(frozen=True)
class PriceLine:
    name: str
    price: str
    minutes: int


@dataclass(frozen=True)
class SiteView:
    client_id: str
    bot_id: str
    name: str
    industry: str
    place: str | None
    address: str | None
    phone: str | None
    phone_link: str | None
    booking_url: str | None
    booking_label: str
    services: tuple[tuple[str, str], ...]
    prices: tuple[PriceLine, ...]
    hours: tuple[str, ...]
    faqs: tuple[tuple[str, str], ...]
    welcome: str


def say_phone(phone: str | None) -> str | None:
    """+17725550103 → (772) 555-0103; other numbers as stored."""
    if phone and phone.startswith("+1") and len(phone) == 12 and phone[1:].isdigit():
        return f"({phone[2:5]}) {phone[5:8]}-{phone[8:]}"
    return phone


def site_view(site: DemoSite) -> SiteView:
    config = site.config
    business = config.business
    week = Week.of(business)
    primary = next((c for c in config.template.booking.ctas if c.kind == "primary"), None)
    return SiteView(
        client_id=site.client_id,
        bot_id=site.bot_id,
        name=business.name,
        industry=config.template.business.type,
        place=locality(business.address),
        address=business.address,
        phone=say_phone(business.phone),
        phone_link=f"tel:{business.phone}" if business.phone else None,
        booking_url=config.booking.url,
        booking_label=primary.label if primary else "Book online",
        services=tuple((s.name, s.description) for s in config.services),
        prices=tuple(
            PriceLine(
                item.name, say_price(item.price_cents, item.price_from), item.duration_minutes
            )
            for item in config.template.catalog
        ),
        hours=tuple(week.summary().split("; ")) if week else (),
        faqs=tuple((f.question, f.answer) for f in config.faqs[:4]),
        welcome=config.welcome_message,
    )
