"""Who may read /metrics: the holder of METRICS_TOKEN, or with none set a loopback peer
only (tcai/daemon/metrics.py). The several-worker sum is tested on a real daemon in
test_serve.py."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from pydantic import SecretStr

from tcai.config import load_settings, new_secret
from tcai.daemon import handlers
from tcai.daemon.app import create_app
from tcai.daemon.keys import METRICS, SETTINGS
from tcai.daemon.metrics import Metrics, is_loopback, metrics_access
from tcai.errors import ConfigError
from tests.helpers import make_settings

TOKEN = new_secret()


def assert_error_shape(body: dict, code: str) -> None:
    assert set(body) == {"error", "request_id"}
    assert body["error"]["code"] == code and body["error"]["message"]


@pytest.fixture
async def daemon(migrated, aiohttp_client, tmp_path):
    """A daemon (the test client's peer is 127.0.0.1) with or without a metrics token."""
    engines = []

    async def start(token: str | None):
        engine = migrated.engine()
        engines.append(engine)
        settings = make_settings(
            log_dir=tmp_path / "logs", metrics_token=SecretStr(token) if token else None
        )
        return await aiohttp_client(create_app(settings, engine=engine))

    yield start
    for engine in engines:
        engine.dispose()


# ---- the decision ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.5", False),
        ("203.0.113.9", False),
        ("::ffff:203.0.113.9", False),
        ("2001:db8::1", False),
        ("fe80::1%eth0", False),
        ("", False),
        (None, False),
        ("localhost", False),  # a peer address is never a name
    ],
)
def test_loopback_peers(remote, loopback) -> None:
    assert is_loopback(remote) is loopback


def test_with_a_token_only_its_bearer_gets_in_from_anywhere() -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert metrics_access(TOKEN, bearer, "203.0.113.9") == "allow"
    assert metrics_access(TOKEN, {"Authorization": f"bearer  {TOKEN} "}, "10.0.0.5") == "allow"
    for headers in (
        {},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": "Bearer "},
    ):
        # Loopback is no way round a token: once one is set, it is the only key.
        assert metrics_access(TOKEN, headers, "127.0.0.1") == "unauthorized", headers


def test_without_a_token_only_loopback_peers_and_never_through_a_proxy() -> None:
    assert metrics_access(None, {}, "127.0.0.1") == "allow"
    assert metrics_access(None, {}, "::1") == "allow"
    assert metrics_access(None, {}, "203.0.113.9") == "hidden"
    assert metrics_access(None, {}, None) == "hidden"
    assert metrics_access(None, {"Authorization": "Bearer anything"}, "10.0.0.5") == "hidden"
    for header in ("X-Forwarded-For", "x-real-ip", "Forwarded"):
        # A reverse proxy on the same host relays the internet from 127.0.0.1.
        assert metrics_access(None, {header: "203.0.113.9"}, "127.0.0.1") == "hidden"


# ---- over HTTP ------------------------------------------------------------------------


async def test_a_token_is_required_and_accepted(daemon) -> None:
    client = await daemon(TOKEN)
    missing = await client.get("/metrics")
    assert missing.status == 401
    assert_error_shape(await missing.json(), "invalid_token")
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in await missing.text()
    wrong = await client.get("/metrics", headers={"Authorization": f"Bearer {new_secret()}"})
    assert wrong.status == 401
    assert_error_shape(await wrong.json(), "invalid_token")
    ok = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status == 200 and ok.headers["Content-Type"].startswith("text/plain")
    assert ok.headers["Cache-Control"] == "no-store"
    text = await ok.text()
    assert 'tcai_http_requests_total{method="GET",route="/metrics",status="401"} 2.0' in text
    assert "tcai_daemon_workers 1.0" in text


async def test_without_a_token_loopback_reads_them_and_a_proxy_gets_a_plain_404(daemon) -> None:
    client = await daemon(None)
    ok = await client.get("/metrics")
    assert ok.status == 200 and "tcai_http_in_flight" in await ok.text()
    relayed = await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    unknown = await client.get("/no-such-page")
    assert relayed.status == unknown.status == 404
    relayed_body, unknown_body = await relayed.json(), await unknown.json()
    assert_error_shape(relayed_body, "not_found")
    assert relayed_body["error"] == unknown_body["error"]  # reveals nothing


class _Transport:
    """Just enough of a transport for `request.remote` to be a chosen peer."""

    def __init__(self, peer: str) -> None:
        self.peer = peer

    def get_extra_info(self, name: str, default=None):
        return (self.peer, 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False


@pytest.mark.parametrize("token", [None, TOKEN])
async def test_a_remote_peer_without_the_token_learns_nothing(token, tmp_path) -> None:
    app = web.Application()
    app[SETTINGS] = load_settings().model_copy(
        update={"metrics_token": SecretStr(token) if token else None}
    )
    app[METRICS] = Metrics()
    request = make_mocked_request("GET", "/metrics", app=app, transport=_Transport("203.0.113.9"))
    assert request.remote == "203.0.113.9"
    if token is None:
        with pytest.raises(web.HTTPNotFound):
            await handlers.metrics(request)
        return
    refused = await handlers.metrics(request)
    assert refused.status == 401
    allowed = make_mocked_request(
        "GET",
        "/metrics",
        headers={"Authorization": f"Bearer {TOKEN}"},
        app=app,
        transport=_Transport("203.0.113.9"),
    )
    response = await handlers.metrics(allowed)
    assert response.status == 200


# ---- the setting ----------------------------------------------------------------------


def test_metrics_token_rules(monkeypatch: pytest.MonkeyPatch, cli) -> None:
    assert load_settings().metrics_token is None
    monkeypatch.setenv("METRICS_TOKEN", "   ")
    assert load_settings().metrics_token is None
    monkeypatch.setenv("METRICS_TOKEN", "short-but-fine-locally")
    assert load_settings().metrics_token.get_secret_value() == "short-but-fine-locally"
    monkeypatch.setenv("TCAI_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", "postgresql://app@db.internal/tcai")
    monkeypatch.setenv("SESSION_SECRET", new_secret())
    monkeypatch.setenv("WIDGET_SECRET", new_secret())
    for bad, says in (("short-but-fine-locally", "at least 32"), ("changeme" * 5, "placeholder")):
        monkeypatch.setenv("METRICS_TOKEN", bad)
        with pytest.raises(ConfigError) as caught:
            load_settings()
        [line] = caught.value.details
        assert line.startswith("METRICS_TOKEN:") and says in line and bad not in line
    monkeypatch.setenv("METRICS_TOKEN", TOKEN)
    assert load_settings().metrics_token.get_secret_value() == TOKEN
    shown = cli("config", "show", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["METRICS_TOKEN"] == "********"
    assert TOKEN not in shown.output and TOKEN not in cli("config", "show").output


def test_one_process_keeps_its_own_registry() -> None:
    with mock.patch.dict("os.environ", {}, clear=False) as environ:
        environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        metrics = Metrics()
    assert metrics.multiprocess is None
    metrics.requests.labels("/x", "GET", "200").inc()
    assert b'tcai_http_requests_total{method="GET",route="/x",status="200"} 1.0' in (
        metrics.render()
    )


def test_switching_to_multiprocess_and_back(tmp_path) -> None:
    import os

    from tcai.daemon.metrics import MULTIPROC_ENV, use_multiprocess, use_single_process

    try:
        use_multiprocess(tmp_path)
        shared = Metrics()
        assert shared.multiprocess == str(tmp_path)
        shared.requests.labels("/x", "GET", "200").inc(3)
        assert {p.name.split("_")[0] for p in tmp_path.iterdir()} >= {"counter", "gauge"}
        text = shared.render()
        assert b'tcai_http_requests_total{method="GET",route="/x",status="200"} 3.0' in text
        assert b"tcai_daemon_workers 1.0" in text
    finally:
        use_single_process()
    assert MULTIPROC_ENV not in os.environ
    alone = Metrics()
    assert alone.multiprocess is None
    alone.workers.inc()
    assert b"tcai_daemon_workers 2.0" in alone.render()
