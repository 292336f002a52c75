"""Which URLs belong to the business's own site: same registrable domain.

The registrable domain ("barber.example.co.uk" for "www.barber.example.co.uk") comes
from the Public Suffix List that the `publicsuffixlist` package ships, so nothing is
downloaded at run time. A site given by IP address is only that address.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urldefrag, urljoin, urlsplit

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList


@functools.cache
def _psl() -> PublicSuffixList:
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def registrable_domain(host: str) -> str:
    """'www.barber.test' → 'barber.test'; an IP address or a bare suffix is itself."""
    host = host.lower().rstrip(".")
    if _is_ip(host):
        return host
    return _psl().privatesuffix(host) or host


def site_of(url: str) -> str:
    return registrable_domain(urlsplit(url).hostname or "")


def same_site(url: str, site: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and site_of(url) == site


def origin_of(url: str) -> str:
    """'https://www.barber.test/faq' → 'https://www.barber.test' (port kept if not default)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = "" if parts.port in (None, default) else f":{parts.port}"
    return f"{parts.scheme}://{host}{port}"


def absolute(base: str, href: str) -> str | None:
    """The link's absolute URL without its fragment; None for mailto:, tel:, javascript:."""
    try:
        url = urldefrag(urljoin(base, href.strip())).url
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return url
