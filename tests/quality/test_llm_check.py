"""`tcai llm check`: one real call through the engine's client; the exact failure, no key."""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import subprocess
import sys

import pytest


def _key() -> str:
    return "sk-test-" + secrets.token_hex(20)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _llm_check(cli, *args: str):
    # The CLI runs its own event loop in a worker thread; the stub answers from this one.
    return await asyncio.to_thread(cli, "llm", "check", *args)


def test_no_key_means_facts_mode(cli) -> None:
    result = cli("llm", "check", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["configured"] is False
    assert report["kind"] == "not_configured" and "facts mode" in report["message"]
    human = cli("llm", "check")
    assert human.exit_code == 0
    assert human.stdout.startswith("facts mode: no OPENAI_API_KEY is set, so the assistants")


async def test_a_working_endpoint_reports_its_latency(cli, stub_llm, monkeypatch) -> None:
    key = _key()
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("OPENAI_BASE_URL", stub_llm.base_url)
    monkeypatch.setenv("OPENAI_MODEL", "stub-model-7")
    result = await _llm_check(cli, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["configured"] is True and report["kind"] == "ok"
    assert isinstance(report["latency_ms"], int) and report["latency_ms"] >= 0
    assert report["model"] == "stub-model-7" and report["base_url"] == stub_llm.base_url
    assert report["attempts"] == 1
    assert [r["model"] for r in stub_llm.requests] == ["stub-model-7"], "one real call"
    human = await _llm_check(cli)
    assert human.exit_code == 0
    assert human.stdout.startswith("✓ LLM OK: model 'stub-model-7' at ")
    assert " ms" in human.stdout
    assert key not in result.output + human.output


@pytest.mark.parametrize(
    ("mode", "kind", "status", "says"),
    [
        ("unauthorized", "unauthorized", 401, "HTTP 401: the endpoint refused the API key"),
        ("not_found", "not_found", 404, "model 'gpt-4o-mini' was not found"),
        ("rate_limit", "rate_limited", 429, "HTTP 429: rate limited or out of quota"),
        ("error", "server_error", 500, "HTTP 500: the endpoint failed on its side"),
        ("garbage", "garbage", None, "not an OpenAI chat completion"),
        ("empty", "empty", None, "answered with empty text"),
    ],
)
async def test_each_failure_is_named(cli, stub_llm, monkeypatch, mode, kind, status, says) -> None:
    key = _key()
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("OPENAI_BASE_URL", stub_llm.base_url)
    stub_llm.mode = mode
    result = await _llm_check(cli, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["ok"], report["kind"], report["status_code"]) == (False, kind, status)
    assert says in report["message"]
    human = await _llm_check(cli)
    assert human.exit_code == 1
    lines = human.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"✗ LLM check failed ({kind}): ")
    assert key not in result.output + human.output


async def test_a_stalled_endpoint_times_out_within_the_budget(cli, stub_llm, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", _key())
    monkeypatch.setenv("OPENAI_BASE_URL", stub_llm.base_url)
    monkeypatch.setenv("LLM_TIMEOUT_MS", "300")
    stub_llm.mode = "stall"
    result = await _llm_check(cli, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["kind"] == "timeout" and "LLM_TIMEOUT_MS=300 ms" in report["message"]


def test_a_closed_port_is_a_refused_connection(cli, monkeypatch) -> None:
    port = _closed_port()
    monkeypatch.setenv("OPENAI_API_KEY", _key())
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    result = cli("llm", "check", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["kind"] == "connection_refused"
    assert f"connection refused by 127.0.0.1:{port}" in report["message"]


def test_a_base_url_is_shown_without_its_credentials(cli, monkeypatch) -> None:
    password = secrets.token_hex(8)
    monkeypatch.setenv("OPENAI_API_KEY", _key())
    monkeypatch.setenv(
        "OPENAI_BASE_URL", f"http://proxy-user:{password}@127.0.0.1:{_closed_port()}/v1?k=x"
    )
    result = cli("llm", "check", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["base_url"].startswith("http://127.0.0.1:")
    assert password not in result.output and "proxy-user" not in result.output


def test_the_command_module_loads_no_sdk_until_it_runs() -> None:
    code = (
        "import sys, tcai.cli.llm_cmd; "
        "print(sorted(m for m in ('openai', 'sqlalchemy', 'aiohttp', 'tcai.quality.llm_probe') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
