"""Booking providers and the one booking-URL verdict everyone uses.

The provider registry, payment hosts, placeholder markers and the look-alike characters
are data (`tcai/data/providers.yaml`). `classify_booking_url` is the single judge of a
booking link: template validation, provisioning, `bots set`, the go-live check, the chat
engine, the daemon's click log and the sweep all ask it.

A link belongs to a provider only on the provider's registrable domain or a real
subdomain of it (label boundaries: `booksy.com`, `www.booksy.com`; never
`booksy.com.evil.example` or `evilbooksy.com`). Hosts are compared in their IDNA ASCII
form; a non-ASCII host that reads as a provider's domain is refused as a look-alike. When
a caller says which provider a link is for (a bot's `booking.provider`), the link must be
on that provider's domain, so a look-alike is never labelled as the provider.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache
from urllib.parse import unquote, urlsplit

import idna

from tcai.data import load_yaml

MAX_URL_CHARS = 2000
# Alphabets whose letters pass for Latin ones; a label mixing two of them is a classic
# homograph (browsers show such hosts as punycode for the same reason).
CONFUSABLE_SCRIPTS = frozenset({"LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE"})


@dataclass(frozen=True)
class Provider:
    name: str
    hosts: tuple[str, ...]

    def owns(self, host: str) -> bool:
        return any(host_on_domain(host, domain) for domain in self.hosts)

    def domains_text(self) -> str:
        *rest, last = self.hosts
        return f"{', '.join(rest)} or {last}" if rest else last


@dataclass(frozen=True)
class ProviderRegistry:
    providers: tuple[Provider, ...]
    payment_hosts: tuple[str, ...]
    payment_path_segments: frozenset[str]
    placeholder_markers: tuple[str, ...]
    confusables: dict[str, str]

    def get(self, name: str) -> Provider | None:
        wanted = name.strip().lower()
        return next((p for p in self.providers if p.name.lower() == wanted), None)

    def provider_for_host(self, host: str) -> Provider | None:
        return next((p for p in self.providers if p.owns(host)), None)

    def known_domains(self) -> tuple[str, ...]:
        return (*(h for p in self.providers for h in p.hosts), *self.payment_hosts)


@dataclass(frozen=True)
class UrlVerdict:
    ok: bool
    reason: str
    provider: str | None = None
    """The provider the link is labelled with: the one whose domain it is on, or, for a
    link claimed as "Direct Booking", that name. None for a business's own site."""
    placeholder: bool = False
    host: str | None = None
    """The host in IDNA ASCII form, lower case, without a trailing dot."""


def host_on_domain(host: str, domain: str) -> bool:
    """`host` is `domain` or a subdomain of it, on label boundaries."""
    return host == domain or host.endswith("." + domain)


@cache
def load_registry() -> ProviderRegistry:
    raw = load_yaml("providers.yaml")
    return ProviderRegistry(
        providers=tuple(
            Provider(name=p["name"], hosts=tuple(h.lower() for h in p.get("hosts", [])))
            for p in raw["providers"]
        ),
        payment_hosts=tuple(h.lower() for h in raw["payment_hosts"]),
        payment_path_segments=frozenset(s.lower() for s in raw["payment_path_segments"]),
        placeholder_markers=tuple(m.upper() for m in raw["placeholder_markers"]),
        confusables={str(k): str(v) for k, v in raw["confusables"].items()},
    )


def is_placeholder_url(url: str) -> bool:
    upper = unquote(url).upper()
    return any(marker in upper for marker in load_registry().placeholder_markers)


class _BadHost(ValueError):
    pass


def _script(char: str) -> str | None:
    """The alphabet of a letter, from its Unicode name (None for digits and '-')."""
    if not char.isalpha():
        return None
    return unicodedata.name(char, "UNKNOWN").split(" ")[0]


def skeleton(text: str) -> str:
    """What `text` looks like in plain Latin: accents dropped, look-alike letters mapped."""
    confusables = load_registry().confusables
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(confusables.get(c, c) for c in bare).lower()


def _ascii_label_ok(label: str) -> bool:
    return (
        0 < len(label) <= 63
        and all(c.isascii() and (c.isalnum() or c == "-") for c in label)
        and not label.startswith("-")
        and not label.endswith("-")
    )


def normalise_host(raw: str) -> str:
    """The IDNA ASCII form of a URL's host, or `_BadHost` with the reason."""
    host = raw[:-1] if raw.endswith(".") else raw
    if not host:
        raise _BadHost("has no valid host name")
    if host.startswith("[") or ":" in host:
        raise _BadHost("uses an IP address instead of a host name")
    if any(unicodedata.category(c)[0] in "CZ" for c in host):
        raise _BadHost("has invisible or control characters in its host name")
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii")
        unicode_host = idna.decode(ascii_host)
    except (idna.IDNAError, UnicodeError, ValueError):
        raise _BadHost("has a host name that is not a valid (international) domain") from None
    if host.lower() not in (ascii_host, unicode_host):
        # Full-width letters, ideographic full stops and the like: browsers map them to a
        # different host than the one the link shows.
        raise _BadHost(
            f"writes its host name with look-alike characters (it is really {ascii_host})"
        )
    labels = ascii_host.split(".")
    if len(labels) < 2 or len(ascii_host) > 253 or not all(map(_ascii_label_ok, labels)):
        raise _BadHost("has no valid host name")
    last = labels[-1]
    if last.isdigit() or (last.startswith("0x") and all(c in "0123456789abcdef" for c in last[2:])):
        raise _BadHost("uses an IP address instead of a host name")
    if unicode_host != ascii_host:
        _refuse_look_alikes(unicode_host, ascii_host)
    return ascii_host


def _refuse_look_alikes(unicode_host: str, ascii_host: str) -> None:
    for label in unicode_host.split("."):
        scripts = {script for script in map(_script, label) if script is not None}
        confusable = scripts & CONFUSABLE_SCRIPTS
        if len(confusable) > 1:
            raise _BadHost(
                f"mixes {' and '.join(sorted(s.title() for s in confusable))} letters in its "
                f"host name ({ascii_host}), a look-alike trick"
            )
    looks_like = skeleton(unicode_host)
    for domain in load_registry().known_domains():
        if host_on_domain(looks_like, skeleton(domain)) and not host_on_domain(ascii_host, domain):
            raise _BadHost(
                f"has a host name that looks like {domain} but is not ({ascii_host}); "
                "refused as a look-alike"
            )


def classify_booking_url(url: str, provider: str | None = None) -> UrlVerdict:
    """Is `url` a link tcai may send a visitor to for booking — and, when `provider` is
    named (the provider the link is claimed for), is it that provider's link?

    Only absolute https URLs on port 443 with a proper host name: no credentials, no IP
    address, no backslash, no percent-encoded or look-alike host, not a payment or
    checkout page. A placeholder (`YOUR_BUSINESS…`) is well-formed but flagged: it blocks
    go-live. "Direct Booking" (a provider without hosts) is the business's own site: any
    host that is not a known provider's."""
    registry = load_registry()
    text = url.strip()
    if not text or any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in text):
        return UrlVerdict(False, "is empty or contains whitespace or control characters")
    if len(text) > MAX_URL_CHARS:
        return UrlVerdict(False, f"is longer than {MAX_URL_CHARS} characters")
    if "\\" in text:
        return UrlVerdict(False, "contains a backslash, which browsers read as a '/'")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return UrlVerdict(False, "is not a valid URL")
    scheme = parts.scheme.lower()
    if scheme != "https":
        shown = scheme or "no scheme"
        return UrlVerdict(False, f"must use https (has {shown})")
    netloc = parts.netloc
    if "@" in netloc:
        return UrlVerdict(False, "must not carry a user name or password")
    if "%" in netloc:
        return UrlVerdict(False, "has percent-encoded characters in its host name")
    if port not in (None, 443):
        return UrlVerdict(False, f"uses an unusual port {port} (only 443)")
    raw_host = netloc.rsplit(":", 1)[0] if not netloc.startswith("[") else netloc
    try:
        host = normalise_host(raw_host)
    except _BadHost as exc:
        return UrlVerdict(False, str(exc))
    if any(host_on_domain(host, h) for h in registry.payment_hosts):
        return UrlVerdict(
            False, f"points at a payment site ({host}); tcai never takes payments", host=host
        )
    segments = {s.lower() for s in unquote(parts.path).split("/") if s}
    if segments & registry.payment_path_segments:
        return UrlVerdict(False, "looks like a checkout or payment page", host=host)
    found = registry.provider_for_host(host)
    label = found.name if found else None
    if provider is not None:
        claimed = registry.get(provider)
        if claimed is None:
            return UrlVerdict(False, f"is claimed for an unknown provider '{provider}'", host=host)
        if claimed.hosts and not claimed.owns(host):
            return UrlVerdict(
                False,
                f"is on {host}, which {claimed.name} does not use: {claimed.name} links must "
                f"be on {claimed.domains_text()} (or a subdomain)",
                host=host,
            )
        if not claimed.hosts:
            if found is not None:
                return UrlVerdict(
                    False,
                    f"is on {found.name}'s domain ({host}); {claimed.name} means the "
                    f"business's own site, so name {found.name} as the provider",
                    host=host,
                )
            label = claimed.name
    placeholder = is_placeholder_url(text)
    reason = "placeholder URL; set the business's own booking link before go-live"
    return UrlVerdict(True, reason if placeholder else "ok", label, placeholder, host)
