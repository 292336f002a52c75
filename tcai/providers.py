"""Booking providers and the one booking-URL verdict everyone uses.

The provider registry, payment hosts and placeholder markers are data
(`tcai/data/providers.yaml`). `classify_booking_url` is the single judge of a booking
link: template validation, provisioning, the chat engine and the sweep all ask it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

DATA_DIR = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Provider:
    name: str
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class ProviderRegistry:
    providers: tuple[Provider, ...]
    payment_hosts: tuple[str, ...]
    payment_path_segments: frozenset[str]
    placeholder_markers: tuple[str, ...]

    def get(self, name: str) -> Provider | None:
        wanted = name.strip().lower()
        return next((p for p in self.providers if p.name.lower() == wanted), None)

    def provider_for_host(self, host: str) -> Provider | None:
        return next(
            (p for p in self.providers if any(_host_matches(host, h) for h in p.hosts)), None
        )


@dataclass(frozen=True)
class UrlVerdict:
    ok: bool
    reason: str
    provider: str | None = None
    placeholder: bool = False


def _host_matches(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


@cache
def load_registry() -> ProviderRegistry:
    raw = yaml.safe_load((DATA_DIR / "providers.yaml").read_text(encoding="utf-8"))
    return ProviderRegistry(
        providers=tuple(
            Provider(name=p["name"], hosts=tuple(h.lower() for h in p.get("hosts", [])))
            for p in raw["providers"]
        ),
        payment_hosts=tuple(h.lower() for h in raw["payment_hosts"]),
        payment_path_segments=frozenset(s.lower() for s in raw["payment_path_segments"]),
        placeholder_markers=tuple(m.upper() for m in raw["placeholder_markers"]),
    )


def is_placeholder_url(url: str) -> bool:
    upper = unquote(url).upper()
    return any(marker in upper for marker in load_registry().placeholder_markers)


def classify_booking_url(url: str) -> UrlVerdict:
    """Is `url` a link tcai may send a visitor to for booking?

    Only absolute https URLs with a host, no credentials, not a payment or checkout page.
    A placeholder (`YOUR_BUSINESS…`) is well-formed but flagged: it blocks go-live."""
    registry = load_registry()
    text = url.strip()
    if not text or any(ch in text for ch in "\r\n\t\x00 "):
        return UrlVerdict(False, "is empty or contains whitespace or control characters")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return UrlVerdict(False, "is not a valid URL")
    scheme = parts.scheme.lower()
    if scheme != "https":
        shown = scheme or "no scheme"
        return UrlVerdict(False, f"must use https (has {shown})")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host or "." not in host:
        return UrlVerdict(False, "has no valid host name")
    if parts.username or parts.password:
        return UrlVerdict(False, "must not carry a user name or password")
    if port not in (None, 443):
        return UrlVerdict(False, f"uses an unusual port {port}")
    if any(_host_matches(host, h) for h in registry.payment_hosts):
        return UrlVerdict(False, f"points at a payment site ({host}); tcai never takes payments")
    segments = {s.lower() for s in unquote(parts.path).split("/") if s}
    if segments & registry.payment_path_segments:
        return UrlVerdict(False, "looks like a checkout or payment page")
    provider = registry.provider_for_host(host)
    placeholder = is_placeholder_url(text)
    reason = (
        "placeholder URL; set the business's own booking link before go-live"
        if (placeholder)
        else "ok"
    )
    return UrlVerdict(True, reason, provider.name if provider else None, placeholder)
