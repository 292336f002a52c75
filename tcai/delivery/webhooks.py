"""Webhook signatures, the SSRF guard and the one HTTP POST the outbox makes.

This module owns how a webhook leaves tcai: the `X-TCAI-Signature` format of docs/http-api.md
(`sign` / `verify`), the refusal of targets a webhook must never reach (`check_target`),
and `post_webhook`, which connects only to the address `check_target` vetted, never
follows a redirect and gives up after 10 s. It does not decide when to deliver or what
a failure means for the item: that is `tcai.delivery.outbox`.

Signature test vector (receivers can check their own `verify` against it)::

    secret    = "tcai-test-vector-key"
    timestamp = 1700000000
    body      = b'{"id":"evt_1","type":"lead.created"}'
    header    = "t=1700000000,v1=bcaa1937d172c87d6e8be5b97aa03a04e1bf60f8aa44a61210e3928201d4c233"

The signed string is `f"{timestamp}.".encode() + body`; `v1` is its HMAC-SHA256 under
the secret, in lower-case hex. Receivers should refuse a timestamp more than five
minutes away from their clock (replays) and dedupe on `X-TCAI-Delivery` (tcai delivers
at least once).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from tcai import __version__

WEBHOOK_TIMEOUT_S = 10.0
SIGNATURE_HEADER = "X-TCAI-Signature"
USER_AGENT = f"tcai/{__version__}"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Addresses that answer with cloud credentials; named apart so the refusal says so.
CLOUD_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
# Ranges `ipaddress` does not flag as non-global on every Python version.
_EXTRA_BLOCKED: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (ipaddress.ip_network("100.64.0.0/10"), "shared address space (CGNAT)"),
    (ipaddress.ip_network("192.0.0.0/24"), "IETF protocol assignments"),
    (ipaddress.ip_network("198.18.0.0/15"), "benchmarking"),
    (ipaddress.ip_network("2001::/32"), "Teredo"),
)
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class TargetRefused(Exception):
    """The webhook target may not be reached (scheme, unresolvable, or a private address)."""


# ---- signatures ------------------------------------------------------------------------


def _mac(secret: str, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The `X-TCAI-Signature` value: `t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""
    return f"t={timestamp},v1={_mac(secret, body, timestamp)}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    tolerance_s: int = 300,
    now: float | None = None,
) -> bool:
    """True when `header` signs `body` under `secret` within `tolerance_s` of `now`.

    Accepts several `v1=` values (a sender in the middle of a secret rotation); compares
    in constant time."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            candidates.append(value.strip().lower())
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = _mac(secret, body, timestamp)
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate)
    return matched


# ---- the SSRF guard --------------------------------------------------------------------


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden in a mapped, 6to4 or NAT64 IPv6 address."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def refusal_reason(ip: IPAddress) -> str | None:
    """Why a webhook may not connect to `ip`, or None when it is a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = refusal_reason(inner)
            if reason is not None:
                return f"{reason} (inside IPv6 {ip})"
    checks: tuple[tuple[bool, str], ...] = (
        (ip in CLOUD_METADATA, "cloud metadata"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip.is_reserved, "reserved"),
    )
    for hit, reason in checks:
        if hit:
            return reason
    for network, reason in _EXTRA_BLOCKED:
        if ip.version == network.version and ip in network:
            return reason
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    port: int
    addresses: tuple[str, ...]
    """The vetted IP addresses; the only ones a delivery may connect to."""


def _split(url: str, allow_private: bool) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("the webhook URL is malformed") from None
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed:
        raise TargetRefused("webhook URLs must use https")
    host = parts.hostname
    if not host:
        raise TargetRefused("the webhook URL has no host")
    return host, port or (443 if parts.scheme == "https" else 80)


async def resolve_target(
    url: str, allow_private: bool, *, getaddrinfo: Callable[..., Any] = socket.getaddrinfo
) -> Target:
    """Resolve the URL's host (in a thread) and vet every address it resolves to.

    Every address must pass: a name that resolves to one public and one private address
    is refused, so a rebinding DNS server cannot win by answering twice. `getaddrinfo`
    is the system's; the knowledge import's tests pass one that names their local sites."""
    host, port = _split(url, allow_private)
    try:
        infos = await asyncio.to_thread(
            getaddrinfo, host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"cannot resolve {host} ({exc})") from None
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]
        ip = ipaddress.ip_address(address)
        if not allow_private:
            reason = refusal_reason(ip)
            if reason is not None:
                raise TargetRefused(f"{host} resolves to a {reason} address ({ip}); refused")
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise TargetRefused(f"cannot resolve {host} (no addresses)")
    return Target(url=url, host=host, port=port, addresses=tuple(addresses))


async def check_target(url: str, allow_private: bool) -> list[str]:
    """The vetted IP addresses of `url`'s host; raises `TargetRefused` otherwise."""
    return list((await resolve_target(url, allow_private)).addresses)


class PinnedResolver(AbstractResolver):
    """Answers aiohttp's look-up with the addresses already vetted, so the connection goes
    where the guard looked (DNS rebinding cannot swap it) while the URL keeps the name
    for the Host header and TLS SNI."""

    def __init__(self, target: Target) -> None:
        self.target = target

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host != self.target.host:
            raise OSError(f"refusing to resolve {host}: not the vetted webhook host")
        results: list[ResolveResult] = []
        for address in self.target.addresses:
            ip = ipaddress.ip_address(address)
            results.append(
                ResolveResult(
                    hostname=host,
                    host=address,
                    port=port or self.target.port,
                    family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                    proto=0,
                    flags=socket.AI_NUMERICHOST,
                )
            )
        return results

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class PostResult:
    status_code: int | None
    error: str | None
    """None when the receiver answered 2xx."""


async def post_webhook(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    allow_private: bool,
    timeout_s: float = WEBHOOK_TIMEOUT_S,
) -> PostResult:
    """POST `body` to `url` once: guard, pinned connection, no redirects, `timeout_s` in
    all (resolution included). Raises `TargetRefused` before any connection is made."""
    async with asyncio.timeout(timeout_s):
        target = await resolve_target(url, allow_private)
        connector = aiohttp.TCPConnector(
            resolver=PinnedResolver(target), use_dns_cache=False, force_close=True
        )
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as http,
            http.post(url, data=body, headers=dict(headers), allow_redirects=False) as response,
        ):
            await response.content.read(64 * 1024)  # drain a little; the body is not used
            status = response.status
    if 200 <= status < 300:
        return PostResult(status, None)
    if 300 <= status < 400:
        return PostResult(status, f"HTTP {status}: redirects are not followed")
    return PostResult(status, f"HTTP {status}")


def webhook_headers(
    *, event_type: str, event_id: str, body: bytes, secret: str | None, timestamp: int
) -> dict[str, str]:
    headers: dict[str, str] = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-TCAI-Event": event_type,
        "X-TCAI-Delivery": event_id,
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body, timestamp)
    return headers
