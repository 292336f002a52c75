"""The LLM call: the official openai SDK inside tcai's time budget.

The client runs on the SDK's aiohttp transport (`DefaultAioHttpClient`), one per
process, and answers are read as plain JSON (`cast_to=object`) rather than built into
the SDK's pydantic models: together about 1 ms of CPU less per turn than the default
httpx transport (docs/chat-pipeline.md, "What a turn costs").

The SDK's defaults (600 s read timeout, 2 retries) would blow the 5 s promise of
`/api/chat`, so the client is built with `max_retries=0` and every call runs under one
deadline (`LLM_TIMEOUT_MS`): at most one retry, and only while time is left. For a
streamed answer the deadline bounds the first token and `STREAM_CAP_S` the whole answer;
once text has reached the visitor there is no retry. Every failure is an `LlmFailure`,
which the pipeline turns into the failsafe answer — never into an error message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import openai
from openai import AsyncOpenAI, AsyncStream

from tcai.config import Settings

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


def make_llm_client(settings: Settings) -> AsyncOpenAI | None:
    """One client per process; None (facts mode) when no API key is configured."""
    if settings.openai_api_key is None:
        return None
    return AsyncOpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        max_retries=0,
        timeout=settings.llm_timeout_ms / 1000,
        http_client=openai.DefaultAioHttpClient(),
    )


def _refused(exc: BaseException) -> bool:
    """A connection that could not be made, wherever in the chain: the aiohttp transport
    reports a refused connection as a connect *timeout*, which it is not."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, aiohttp.ClientConnectorError | ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _classify(exc: BaseException) -> LlmFailure:
    if isinstance(exc, openai.APIConnectionError | openai.APITimeoutError) and _refused(exc):
        return LlmFailure("connection")
    if isinstance(exc, (TimeoutError, openai.APITimeoutError)):
        return LlmFailure("timeout")
    if isinstance(exc, openai.RateLimitError):
        return LlmFailure("rate_limited")
    if isinstance(exc, openai.APIStatusError):
        return LlmFailure("status", str(exc.status_code))
    if isinstance(exc, openai.APIConnectionError):
        return LlmFailure("connection")
    return LlmFailure("garbage", type(exc).__name__)


def clip_reply(text: str) -> str:
    """At most MAX_REPLY_CHARS, cut at a sentence end when one is near."""
    text = text.strip()
    if len(text) <= MAX_REPLY_CHARS:
        return text
    cut = text[:MAX_REPLY_CHARS]
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    return cut[: end + 1] if end > MAX_REPLY_CHARS // 2 else cut.rstrip() + "…"


def _body(model: str, messages: list[dict[str, str]], *, stream: bool) -> dict[str, Any]:
    """The request body, sent through the SDK's plain `post`: `chat.completions.create`
    walks every message through its TypedDict transformer, which cost ~20 ms of CPU per
    call here (bench/daemon_bench.py) for no change to our already-plain dictionaries."""
    return {"model": model, "messages": messages, "max_tokens": MAX_TOKENS, "stream": stream}


def _path(document: object, part: str) -> str | None:
    """`choices[0][part]["content"]` of an answer or a streamed chunk, when it is text."""
    choices = document.get("choices") if isinstance(document, dict) else None
    first = choices[0] if isinstance(choices, list) and choices else None
    inner = first.get(part) if isinstance(first, dict) else None
    content = inner.get("content") if isinstance(inner, dict) else None
    return content if isinstance(content, str) else None


async def _once(
    client: AsyncOpenAI,
    model: str,
    messages: list[dict[str, str]],
    budget_s: float,
    on_chunk: ChunkSink | None,
    sent: list[str],
    cap_deadline: float,
    stall_s: float,
) -> str:
    if on_chunk is None:
        async with asyncio.timeout(budget_s):
            response = await client.post(
                "/chat/completions",
                cast_to=object,
                body=_body(model, messages, stream=False),
                options={"timeout": budget_s},
            )
        content = _path(response, "message")
        if content is None:
            raise LlmFailure("garbage", "no text")
        return content
    # Streaming: the budget bounds the first token and every pause before it runs out;
    # after that a chunk must come every `stall_s`, and the cap bounds the whole answer.
    loop = asyncio.get_running_loop()
    first_deadline = loop.time() + budget_s
    async with asyncio.timeout_at(first_deadline) as deadline:
        stream: Any = await client.post(
            "/chat/completions",
            cast_to=object,
            body=_body(model, messages, stream=True),
            options={"timeout": max(0.1, cap_deadline - loop.time())},
            stream=True,
            stream_cls=AsyncStream[object],
        )
        total = 0
        async for chunk in stream:
            delta = _path(chunk, "delta")
            if not delta:
                continue
            deadline.reschedule(min(cap_deadline, max(first_deadline, loop.time() + stall_s)))
            room = MAX_REPLY_CHARS - total
            piece = delta[:room]
            if piece:
                sent.append(piece)
                total += len(piece)
                await on_chunk(piece)
            if total >= MAX_REPLY_CHARS:
                await stream.close()
                break
    return "".join(sent)


async def complete(
    client: AsyncOpenAI,
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
        except (openai.OpenAIError, TimeoutError, ValueError, TypeError, AttributeError) as exc:
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
