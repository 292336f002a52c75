"""`tcai llm check`: one real call to the configured LLM endpoint, and what came of it.

The call goes through the chat engine's own client and budget (`tcai.chat.llm`:
`make_llm_client`, `complete`, `LLM_TIMEOUT_MS`), so a pass here means the engine's
calls can pass too. A failure is named exactly (timeout, connection refused, unknown
host, HTTP 401 / 403 / 404 / 429 / 5xx, an answer that is not a chat completion) in one
line that says what to fix. The API key never appears in a result; a base URL is shown
without user name, password or query. The go-live check (`tcai.quality.golive`) reuses this.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit, urlunsplit

from tcai.config import Settings

DEFAULT_BASE_URL = "https://api.openai.com/v1"
PROBE_MESSAGES = [
    {"role": "system", "content": "This is a connectivity check. Answer in one word."},
    {"role": "user", "content": "Reply with the word OK."},
]
CONNECT_PROBE_S = 2.0


@dataclass(frozen=True)
class LlmProbe:
    configured: bool
    ok: bool
    kind: str
    """ok, not_configured, timeout, connection_refused, unknown_host, unreachable,
    connection, unauthorized, forbidden, not_found, rate_limited, server_error, status,
    garbage, empty."""
    message: str
    base_url: str
    model: str
    timeout_ms: int
    latency_ms: int | None = None
    attempts: int | None = None
    """Requests the answer took (the engine retries once inside its budget)."""
    status_code: int | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def shown_url(url: str) -> str:
    """A base URL fit to print: no user name, password, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _status_message(code: int, model: str, base: str) -> tuple[str, str]:
    if code == 401:
        return "unauthorized", (
            f"HTTP 401: the endpoint refused the API key; set a valid OPENAI_API_KEY for {base}"
        )
    if code == 403:
        return "forbidden", (
            f"HTTP 403: the API key may not use model '{model}' or this endpoint; check the "
            "key's project and permissions"
        )
    if code == 404:
        return "not_found", (
            f"HTTP 404: model '{model}' was not found at {base}; check OPENAI_MODEL, and that "
            "OPENAI_BASE_URL is the API root (it usually ends in /v1)"
        )
    if code == 429:
        return "rate_limited", (
            "HTTP 429: rate limited or out of quota; check the account's limits and billing"
        )
    if code >= 500:
        return "server_error", (
            f"HTTP {code}: the endpoint failed on its side; retry later or check its status"
        )
    return "status", f"HTTP {code}: the endpoint refused the request from {base}"


def _diagnose_connection(base_url: str) -> tuple[str, str]:
    """Why an HTTP connection failed: name resolution, refusal, or silence."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return "unknown_host", f"cannot resolve host '{host}'; check OPENAI_BASE_URL"
    try:
        with socket.create_connection((host, port), timeout=CONNECT_PROBE_S):
            pass
    except ConnectionRefusedError:
        return "connection_refused", (
            f"connection refused by {host}:{port}; is the LLM server running there? "
            "(OPENAI_BASE_URL)"
        )
    except TimeoutError:
        return "unreachable", f"{host}:{port} does not answer (no connection within 2 s)"
    except OSError as exc:
        return "unreachable", f"cannot reach {host}:{port} ({exc.strerror or 'network error'})"
    return "connection", (
        f"connected to {host}:{port} but the HTTP exchange failed (TLS, proxy or protocol "
        "problem); check OPENAI_BASE_URL's scheme and port"
    )


async def _call(settings: Settings) -> tuple[int, int | None, BaseException | None]:
    from tcai.chat.llm import complete, make_llm_client

    client = make_llm_client(settings)
    assert client is not None
    started = time.monotonic()
    try:
        answer = await complete(
            client,
            model=settings.openai_model,
            messages=PROBE_MESSAGES,
            budget_ms=settings.llm_timeout_ms,
        )
    except Exception as exc:  # every failure is reported, none escapes
        return round((time.monotonic() - started) * 1000), None, exc
    finally:
        await client.close()
    return round((time.monotonic() - started) * 1000), answer.attempts, None


def probe_llm(settings: Settings) -> LlmProbe:
    """One real call to the configured endpoint; never raises, never shows the key."""
    from tcai.chat.llm import LlmFailure

    base = shown_url(settings.openai_base_url or DEFAULT_BASE_URL)
    model = settings.openai_model

    def result(
        ok: bool,
        kind: str,
        message: str,
        latency_ms: int | None = None,
        attempts: int | None = None,
        status_code: int | None = None,
    ) -> LlmProbe:
        return LlmProbe(
            configured=settings.openai_api_key is not None,
            ok=ok,
            kind=kind,
            message=message,
            base_url=base,
            model=model,
            timeout_ms=settings.llm_timeout_ms,
            latency_ms=latency_ms,
            attempts=attempts,
            status_code=status_code,
        )

    if settings.openai_api_key is None:
        return result(
            True,
            "not_configured",
            "facts mode: no OPENAI_API_KEY is set, so the assistants answer from each "
            "business's own facts, without an LLM",
        )
    latency_ms, attempts, error = asyncio.run(_call(settings))
    if error is None:
        return result(
            True,
            "ok",
            f"model '{model}' at {base} answered in {latency_ms} ms",
            latency_ms,
            attempts,
        )
    kind = error.kind if isinstance(error, LlmFailure) else "garbage"
    detail = str(error).partition(": ")[2]
    status_code = int(detail) if kind == "status" and detail.isdigit() else None
    if kind in ("timeout", "stalled"):
        kind, message = (
            "timeout",
            (
                f"no answer from {base} within LLM_TIMEOUT_MS={settings.llm_timeout_ms} ms; "
                "check the endpoint or raise LLM_TIMEOUT_MS"
            ),
        )
    elif kind == "rate_limited":
        status_code = 429
        kind, message = _status_message(429, model, base)
    elif status_code is not None:
        kind, message = _status_message(status_code, model, base)
    elif kind == "connection":
        kind, message = _diagnose_connection(settings.openai_base_url or DEFAULT_BASE_URL)
    elif kind == "empty":
        message = f"model '{model}' at {base} answered with empty text"
    else:
        kind, message = (
            "garbage",
            (
                f"{base} answered with something that is not an OpenAI chat completion; is "
                "OPENAI_BASE_URL an OpenAI-compatible API root (…/v1)?"
            ),
        )
    return result(False, kind, message, latency_ms, None, status_code)
