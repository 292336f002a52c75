"""Real `tcai serve` processes: the kill switch across processes, draining on SIGTERM,
several workers, and the operator commands that talk to a running daemon."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tcai.config import new_secret
from tests.conftest import provision, run_tcai

ORIGIN = "https://fadefactory.example.org"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(
    method: str,
    url: str,
    body: dict | None = None,
    headers: dict | None = None,
    timeout: float = 10,
):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture
def daemon_env(seeded, tmp_path) -> dict[str, str]:
    provision(seeded, allowed_origins=[ORIGIN])
    return {
        "DATABASE_URL": seeded.url,
        "WIDGET_SECRET": new_secret(),
        "LOG_DIR": str(tmp_path / "logs"),
    }


@contextmanager
def serving(env: dict[str, str], *extra: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tcai", "serve", "--port", str(port), *extra],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if http("GET", base + "/api/health", timeout=1)[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        else:
            process.kill()
            raise AssertionError(process.communicate()[1])
        yield base, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def chat(base: str, message: str = "do you take walk-ins?") -> tuple[int, dict]:
    status, config = http(
        "GET",
        f"{base}/api/widget/config/fade-factory/fade-factory_main",
        headers={"Origin": ORIGIN},
    )
    assert status == 200, config
    return http(
        "POST",
        f"{base}/api/chat/fade-factory/fade-factory_main",
        {"message": message},
        {"Origin": ORIGIN, "Authorization": f"Bearer {config['token']}"},
    )


def wait_for(predicate, seconds: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds} s")


def test_kill_switch_reaches_two_daemons_within_2_seconds(daemon_env) -> None:
    with serving(daemon_env) as (first, _), serving(daemon_env) as (second, _):
        assert chat(first)[0] == 200 and chat(second)[0] == 200  # both have the bot cached
        disabled = run_tcai(
            "bot", "disable", "fade-factory_main", "--reason", "owner request", env=daemon_env
        )
        assert disabled.returncode == 0, disabled.stderr
        for base in (first, second):
            wait_for(lambda b=base: chat(b)[0] == 503, 2.0)
            _status, body = chat(base)
            assert body["status"] == "paused" and "(772) 555-0100" in body["reply"]
        enabled = run_tcai("bot", "enable", "fade-factory_main", env=daemon_env)
        assert enabled.returncode == 0, enabled.stderr
        for base in (first, second):
            wait_for(lambda b=base: chat(b)[0] == 200, 2.0)
        changed = run_tcai("bots", "set", "fade-factory_main", "lead_capture=false", env=daemon_env)
        assert changed.returncode == 0
        invalidate = run_tcai("cache", "invalidate", env=daemon_env)
        assert invalidate.returncode == 0, invalidate.stderr


def test_disable_needs_a_reason_and_is_audited(cli, daemon_env) -> None:
    assert cli("bot", "disable", "fade-factory_main").exit_code == 2
    result = cli("bot", "disable", "fade-factory_main", "--reason", "spam wave", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "paused"
    assert cli("bot", "disable", "ghost_main", "--reason", "x").exit_code == 1


def test_sigterm_drains_in_flight_requests(daemon_env) -> None:
    import asyncio

    from tcai.quality.stub_llm import StubLLM

    loop = asyncio.new_event_loop()
    stub = StubLLM(reply="Here you go, thanks for waiting.", delay_s=1.5)
    base_url = loop.run_until_complete(stub.start())
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    env = {
        **daemon_env,
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": base_url,
        "LLM_TIMEOUT_MS": "5000",
    }
    try:
        with serving(env) as (base, process):
            result: dict[str, object] = {}

            def ask() -> None:
                result["answer"] = chat(base, "tell me about fades")

            asker = threading.Thread(target=ask)
            asker.start()
            wait_for(lambda: bool(stub.requests), 5.0)
            process.send_signal(signal.SIGTERM)
            asker.join(15)
            status, body = result["answer"]
            assert status == 200 and body["source"] == "llm"
            assert process.wait(20) == 0
    finally:
        asyncio.run_coroutine_threadsafe(stub.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)


def test_several_workers_share_one_port(daemon_env) -> None:
    with serving(daemon_env, "--workers", "2") as (base, process):
        assert all(http("GET", base + "/api/health")[0] == 200 for _ in range(20))
        assert chat(base)[0] == 200
    assert process.returncode == 0


def scrape(base: str, token: str) -> str:
    request = urllib.request.Request(
        base + "/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.read().decode())


def sample(text: str, key: str) -> float:
    """A sample's value in a Prometheus text document (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def worker_pids(parent: int) -> list[int]:
    """The worker processes `tcai serve` spawned (not multiprocessing's resource tracker)."""
    found = []
    for children in Path(f"/proc/{parent}/task").glob("*/children"):
        for pid in children.read_text().split():
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
    return found


def test_several_workers_report_the_whole_daemon_in_metrics(daemon_env, tmp_path) -> None:
    token, temp, logs = new_secret(), tmp_path / "tmp", Path(daemon_env["LOG_DIR"])
    temp.mkdir()
    env = {**daemon_env, "METRICS_TOKEN": token, "TMPDIR": str(temp)}
    widget = 'tcai_http_requests_total{method="GET",route="/widget/{name}",status="200"}'

    def served(log_name: str) -> int:
        path = logs / log_name
        lines = path.read_text().splitlines() if path.exists() else []
        return sum('"/widget/{name}"' in line for line in lines)

    with serving(env, "--workers", "2") as (base, process):
        [shared] = list(temp.glob("tcai-metrics-*"))  # fresh and private
        assert stat.S_IMODE(shared.stat().st_mode) == 0o700
        wait_for(lambda: sample(scrape(base, token), "tcai_daemon_workers") == 2.0, 30)
        assert http("GET", base + "/metrics")[0] == 401  # the token holds on every worker
        sent = 0
        while sent < 500 and not (served("access.jsonl") and served("access.w1.jsonl")):
            with urllib.request.urlopen(base + "/widget/embed.js", timeout=10) as response:
                assert response.status == 200
            sent += 1
        # The kernel spread the connections over both workers...
        first, second = served("access.jsonl"), served("access.w1.jsonl")
        assert first > 0 and second > 0 and first + second == sent
        # ...and whichever worker answers /metrics counts every request of the daemon.
        for _ in range(8):
            assert sample(scrape(base, token), widget) == sent
        # A worker that exits: its counts stay, its live gauges go (marked dead).
        [child] = worker_pids(process.pid)
        os.kill(child, signal.SIGKILL)

        def one_worker_left() -> bool:
            try:
                return sample(scrape(base, token), "tcai_daemon_workers") == 1.0
            except OSError:  # a connection the killed worker had accepted
                return False

        wait_for(one_worker_left, 10)
        text = scrape(base, token)
        assert sample(text, widget) == sent and sample(text, "tcai_http_in_flight") == 1.0
    assert process.returncode == 0
    assert not list(temp.glob("tcai-metrics-*"))  # removed when the daemon stops


def test_health_embed_and_preview_commands(daemon_env) -> None:
    with serving(daemon_env) as (base, _):
        ok = run_tcai("health", "--url", base, "--json", env=daemon_env)
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)["status"] == "ok"
    down = run_tcai("health", "--url", f"http://127.0.0.1:{free_port()}", env=daemon_env)
    assert down.returncode == 1 and "no daemon answers" in down.stderr
    embed = run_tcai(
        "embed", "fade-factory_main", "--url", "https://chat.agency.example", env=daemon_env
    )
    assert embed.returncode == 0
    assert embed.stdout.strip() == (
        '<script src="https://chat.agency.example/widget/embed.js" '
        'data-client="fade-factory" data-bot="fade-factory_main" async></script>'
    )
    link = run_tcai(
        "preview-link",
        "fade-factory_main",
        "--ttl",
        "2h",
        "--url",
        "https://chat.agency.example",
        env=daemon_env,
    )
    assert link.returncode == 0 and link.stdout.startswith("https://chat.agency.example/preview/ey")
    too_long = run_tcai("preview-link", "fade-factory_main", "--ttl", "8d", env=daemon_env)
    assert too_long.returncode == 2 and "at most 7d" in too_long.stderr
    garbled = run_tcai("preview-link", "fade-factory_main", "--ttl", "soon", env=daemon_env)
    assert garbled.returncode == 2


def test_demo_prepares_one_business_per_template(tmp_path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}", "LOG_DIR": str(tmp_path / "logs")}
    first = run_tcai("demo", "--no-serve", "--port", "5077", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "http://127.0.0.1:5077/demo/"
    assert "17 demo businesses ready (17 new)" in first.stderr
    again = run_tcai("demo", "--no-serve", "--port", "5077", env=env)
    assert "17 demo businesses ready (0 new)" in again.stderr
    bots = json.loads(run_tcai("bots", "list", "--json", env=env).stdout)
    assert len(bots) == 17 and all(b["client_id"].startswith("demo-") for b in bots)
    assert {b["workspace_status"] for b in bots} == {"demo"}


def test_a_taken_port_is_refused_even_by_a_second_set_of_workers(daemon_env) -> None:
    """Workers share their port with their siblings only: a second daemon on the same
    port exits 2 naming the port, instead of splitting the traffic (or calling it a bug)."""
    with serving(daemon_env, "--workers", "2") as (base, _process):
        port = base.rsplit(":", 1)[1]
        for extra in (("--workers", "2"), ()):
            second = run_tcai("serve", "--port", port, *extra, env=daemon_env, timeout=60)
            assert second.returncode == 2, second.stderr
            assert f"port {port} is in use" in second.stderr
            assert "Traceback" not in second.stderr and "bug" not in second.stderr
            if extra:
                assert "rate limits are kept per worker process" in second.stderr
        assert http("GET", base + "/api/health", timeout=5)[0] == 200
