"""The LLM call: an OpenAI-compatible chat completion inside tcai's time budget.

One small client per process (`LlmClient`) speaks the one endpoint tcai needs, `POST
{OPENAI_BASE_URL}/chat/completions`, plain JSON or `"stream": true` server-sent events,
on one aiohttp session. It replaced the openai SDK on this path after measuring both
(bench/daemon_bench.py; docs/chat-pipeline.md, "What a turn costs"): the SDK, even on its
aiohttp transport and read as plain JSON, cost ~0.6 ms of CPU per call against ~0.15
for the same POST here, and importing it ~15 MB of the daemon's memory (httpx, anyio and
470 modules of types), which alone kept the daemon over its 100 MB bound. The SDK stays
in the tests, where it checks that the stub server speaks the real API's shapes.

Every call runs under one deadline (`LLM_TIMEOUT_MS`): at most one retry, and only while
time is left. For a streamed answer the deadline bounds the first token and
`STREAM_CAP_S` the whole answer; once text has reached the visitor there is no retry.
Every failure is an `LlmFailure`, which the pipeline turns into the failsafe answer —
never into an error message.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from tcai import __version__
from tcai.config import Settings

DEFAULT_BASE_URL = "https://api.openai.com/v1"
MAX_CONNECTIONS = 1000
STREAM_CAP_S = 30.0
STALL_S = 1.5
MAX_TOKENS = 500
MAX_REPLY_CHARS = 2000
MIN_RETRY_BUDGET_S = 0.5

ChunkSink = Callable[[str], Awaitable[None]]


class LlmFailure(Exception):
    def __init__(self, kind: str, detail: str = "", *, partial: bool = False) -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.partial = partial
        """Part of a streamed answer had already reached the visitor."""


@dataclass(frozen=True)
class LlmAnswer:
    text: str
    streamed: bool
    attempts: int


class LlmClient:
    """An OpenAI-compatible chat-completions endpoint: its URL, its key, and one aiohttp
    session (opened on first use, inside the event loop; proxies from the environment
    are honoured, as the SDK honours them)."""

    def __init__(self, api_key: str, base_url: str | None = None) -> None:
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"tcai/{__version__}",
        }
        self.stream_headers = {**self.headers, "Accept": "text/event-stream"}
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                # aiohttp's default of 100 connections would queue the 101st visitor for
                # a whole LLM answer; the openai SDK allows 1,000, and so do we.
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, keepalive_timeout=30),
                timeout=aiohttp.ClientTimeout(total=None),  # every call has its own deadline
                trust_env=True,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def make_llm_client(settings: Settings) -> LlmClient | None:
    """One client per process; None (facts mode) when no API key is configured."""
    if settings.openai_api_key is None:
        return None
    return LlmClient(settings.openai_api_key.get_secret_value(), settings.openai_base_url)


def _classify(exc: BaseException) -> LlmFailure:
    if isinstance(exc, TimeoutError):  # aiohttp's own timeouts are TimeoutErrors too
        return LlmFailure("timeout")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return LlmFailure("connection", type(exc).__name__)
    return LlmFailure("garbage", type(exc).__name__)


def _check_status(response: aiohttp.ClientResponse) -> None:
    if response.status == 429:
        raise LlmFailure("rate_limited")
    if response.status >= 400:
        raise LlmFailure("status", str(response.status))


def clip_reply(text: str) -> str:
    """At most MAX_REPLY_CHARS, cut at a sentence end when one is near."""
    text = text.strip()
    if len(text) <= MAX_REPLY_CHARS:
        return text
    cut = text[:MAX_REPLY_CHARS]
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    return cut[: end + 1] if end > MAX_REPLY_CHARS // 2 else cut.rstrip() + "…"


def _body(model: str, messages: list[dict[str, str]], *, stream: bool) -> bytes:
    document = {"model": model, "messages": messages, "max_tokens": MAX_TOKENS, "stream": stream}
    return json.dumps(document, ensure_ascii=False).encode()


def _path(document: object, part: str) -> str | None:
    """`choices[0][part]["content"]` of an answer or a streamed chunk, when it is text."""
    choices = document.get("choices") if isinstance(document, dict) else None
    first = choices[0] if isinstance(choices, list) and choices else None
    inner = first.get(part) if isinstance(first, dict) else None
    content = inner.get("content") if isinstance(inner, dict) else None
    return content if isinstance(content, str) else None


async def _once(
    client: LlmClient,
    model: str,
    messages: list[dict[str, str]],
    budget_s: float,
    on_chunk: ChunkSink | None,
    sent: list[str],
    cap_deadline: float,
    stall_s: float,
) -> str:
    session = client.session()
    if on_chunk is None:
        async with asyncio.timeout(budget_s):
            body = _body(model, messages, stream=False)
            async with session.post(client.url, data=body, headers=client.headers) as response:
                _check_status(response)
                payload = await response.read()
        content = _path(json.loads(payload), "message")
        if content is None:
            raise LlmFailure("garbage", "no text")
        return content
    # Streaming: the budget bounds the first token and every pause before it runs out;
    # after that a chunk must come every `stall_s`, and the cap bounds the whole answer.
    loop = asyncio.get_running_loop()
    first_deadline = loop.time() + budget_s
    async with asyncio.timeout_at(first_deadline) as deadline:
        body = _body(model, messages, stream=True)
        async with session.post(client.url, data=body, headers=client.stream_headers) as response:
            _check_status(response)
            total = 0
            async for line in response.content:
                data = line.strip()
                if not data.startswith(b"data:"):
                    continue  # blank separators, comments, event names
                data = data[5:].strip()
                if data == b"[DONE]":
                    break
                delta = _path(json.loads(data), "delta")
                if not delta:
                    continue
                deadline.reschedule(min(cap_deadline, max(first_deadline, loop.time() + stall_s)))
                piece = delta[: MAX_REPLY_CHARS - total]
                if piece:
                    sent.append(piece)
                    total += len(piece)
                    await on_chunk(piece)
                if total >= MAX_REPLY_CHARS:
                    break  # leaving the block closes the connection
    return "".join(sent)


async def complete(
    client: LlmClient,
    *,
    model: str,
    messages: list[dict[str, str]],
    budget_ms: int,
    on_chunk: ChunkSink | None = None,
    stream_deadline: float | None = None,
    stall_s: float = STALL_S,
) -> LlmAnswer:
    """Ask the LLM; raise `LlmFailure` on any failure, an empty or a garbage answer.

    `budget_ms` bounds a whole answer, or a streamed answer's first token; a stream that
    stalls (no chunk within `stall_s` once the budget is spent) or breaks fails with
    `partial=True` when text already went out. `stream_deadline` (monotonic seconds)
    caps a streamed answer; default `STREAM_CAP_S` from now."""
    start = time.monotonic()
    budget_s = budget_ms / 1000
    loop = asyncio.get_running_loop()
    cap_deadline = loop.time() + (
        STREAM_CAP_S if stream_deadline is None else stream_deadline - start
    )
    attempts = 0
    sent: list[str] = []
    last: LlmFailure = LlmFailure("timeout")
    while True:
        remaining = budget_s - (time.monotonic() - start)
        if attempts >= 2 or remaining < (MIN_RETRY_BUDGET_S if attempts else 0.001):
            raise last
        attempts += 1
        try:
            text = await _once(
                client, model, messages, remaining, on_chunk, sent, cap_deadline, stall_s
            )
        except LlmFailure as exc:
            last = exc
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError, TypeError) as exc:
            last = _classify(exc)
        else:
            text = clip_reply(text)
            if not text:
                last = LlmFailure("empty")
            else:
                return LlmAnswer(text=text, streamed=on_chunk is not None, attempts=attempts)
        if sent:
            # Part of an answer reached the visitor and the rest will not come: no retry
            # (it would repeat what they read); the caller answers from the facts.
            raise LlmFailure(last.kind if last.kind != "timeout" else "stalled", partial=True)
        if last.kind in ("timeout",):
            raise last
