"""Who the client is (tcai/daemon/remote.py): the peer, or the address a trusted proxy
names in Forwarded / X-Forwarded-For, read right to left."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from tcai.config import load_settings
from tcai.daemon.remote import ClientAddresses
from tcai.errors import ConfigError


class Transport:
    def __init__(self, peer: str) -> None:
        self.peer = peer

    def get_extra_info(self, name: str, default: object = None) -> object:
        return (self.peer, 4711) if name == "peername" else default


def request(peer: str, **headers: str):
    names = {"xff": "X-Forwarded-For", "forwarded": "Forwarded"}
    return make_mocked_request(
        "GET",
        "/",
        headers=CIMultiDict({names[k]: v for k, v in headers.items()}),
        transport=Transport(peer),
    )


PROXIES = ClientAddresses(["10.0.0.0/8", "127.0.0.1", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "headers", "client"),
    [
        # Not from a proxy: the peer, whatever it claims.
        ("203.0.113.5", {"xff": "1.2.3.4"}, "203.0.113.5"),
        ("203.0.113.5", {"forwarded": "for=1.2.3.4"}, "203.0.113.5"),
        # From a proxy: the first untrusted hop from the right.
        ("10.0.0.2", {"xff": "198.51.100.7"}, "198.51.100.7"),
        ("10.0.0.2", {"xff": "6.6.6.6, 198.51.100.7, 10.0.0.9"}, "198.51.100.7"),
        ("127.0.0.1", {"xff": "198.51.100.7,10.1.2.3"}, "198.51.100.7"),
        ("10.0.0.2", {"forwarded": "for=192.0.2.60;proto=https;by=10.0.0.2"}, "192.0.2.60"),
        ("10.0.0.2", {"forwarded": 'for="[2001:db8::1]:4711"'}, "2001:db8::1"),
        ("10.0.0.2", {"forwarded": "for=192.0.2.60, for=10.0.0.3"}, "192.0.2.60"),
        ("10.0.0.2", {"xff": "192.0.2.44:5555"}, "192.0.2.44"),
        ("fd00::5", {"xff": "::ffff:192.0.2.8"}, "192.0.2.8"),
        # Forwarded wins over X-Forwarded-For when both are there.
        ("10.0.0.2", {"forwarded": "for=192.0.2.1", "xff": "192.0.2.2"}, "192.0.2.1"),
        # A proxy that names no one, or garbage, is itself the client.
        ("10.0.0.2", {}, "10.0.0.2"),
        ("10.0.0.2", {"xff": "not-an-address"}, "10.0.0.2"),
        ("10.0.0.2", {"xff": "198.51.100.7, unknown"}, "10.0.0.2"),
        ("10.0.0.2", {"forwarded": "for=unknown"}, "10.0.0.2"),
        ("10.0.0.2", {"forwarded": 'for=";;;"'}, "10.0.0.2"),
        # Every hop a proxy: the leftmost.
        ("10.0.0.2", {"xff": "10.0.0.7, 10.0.0.8"}, "10.0.0.7"),
    ],
)
def test_the_client_address(peer: str, headers: dict[str, str], client: str) -> None:
    assert PROXIES.of(request(peer, **headers)) == client


def test_without_trusted_proxies_headers_are_ignored() -> None:
    assert ClientAddresses().of(request("127.0.0.1", xff="198.51.100.7")) == "127.0.0.1"
    assert not ClientAddresses().is_trusted("127.0.0.1")


def test_trusted_proxies_setting_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7 ,::1")
    assert load_settings(None).trusted_proxies == ("10.0.0.0/8", "192.168.1.7/32", "::1/128")
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8,proxy.internal")
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    assert any(
        "TRUSTED_PROXIES" in line and "proxy.internal" in line for line in caught.value.details
    )
    monkeypatch.setenv("TRUSTED_PROXIES", "")
    monkeypatch.setenv("REDIS_URL", "http://127.0.0.1:6379")
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    assert any(line.startswith("REDIS_URL") for line in caught.value.details)
