"""Who is the client: the socket peer, or, behind a trusted reverse proxy, the address the
proxy names (docs/http-api.md, "Client addresses and proxies").

`TRUSTED_PROXIES` is a list of CIDR networks. A request whose peer is not in it is its own
client, whatever headers it carries: a visitor cannot pick their address (and so their
rate limit) by sending X-Forwarded-For. A request from a trusted proxy names its client in
`Forwarded` (RFC 7239, parsed by aiohttp's own `request.forwarded`) or else in
`X-Forwarded-For`; the hops are read right to left, skipping trusted proxies, and the
first address that is not one is the client (so a chain of proxies works, and whatever a
visitor wrote at the left of the header is ignored). A trusted proxy that names no one, or
names garbage, leaves its own address as the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=4096)
def _address(text: str) -> Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # Forwarded: for="[2001:db8::1]:4711"
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # 192.0.2.1:4711
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientAddresses:
    """The client address rule for one daemon, built once from `TRUSTED_PROXIES`."""

    def __init__(self, trusted_proxies: Iterable[str] = ()) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(item, strict=False) for item in trusted_proxies
        )

    def is_trusted(self, peer: str | None) -> bool:
        if not self.networks or not peer:
            return False
        address = _address(peer)
        return address is not None and any(address in network for network in self.networks)

    def of(self, request: web.BaseRequest) -> str:
        """The client's address as text ("?" when the socket has none)."""
        peer = request.remote or "?"
        if not self.networks or not self.is_trusted(peer):
            return peer
        hops = self._hops(request)
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                return peer  # a malformed hop: trust nothing further left of it
            if not any(address in network for network in self.networks):
                return str(address)
        # Every hop is a trusted proxy: the leftmost is the client as far as we know.
        first = _address(hops[0]) if hops else None
        return str(first) if first is not None else peer

    @staticmethod
    def _hops(request: web.BaseRequest) -> list[str]:
        if "Forwarded" in request.headers:
            try:
                named = [item.get("for", "") for item in request.forwarded]
            except Exception:  # aiohttp parses leniently; be sure a bad header is no 500
                named = []
            hops = [hop for hop in named if hop]
            if hops:
                return hops
        header = ",".join(request.headers.getall("X-Forwarded-For", ()))
        return [hop.strip() for hop in header.split(",") if hop.strip()]
