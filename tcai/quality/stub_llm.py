"""A test double for OpenAI-compatible LLM servers, used by the tests and `tcai templates smoke`.

`StubLLM` is a small aiohttp server on 127.0.0.1 (a free port) that speaks the two endpoints
the chat engine uses, `POST /v1/chat/completions` (plain JSON and `"stream": true` SSE) and
`GET /v1/models`, with every JSON shaped as the OpenAI API shapes it, so the real `openai`
SDK parses it. The stub talks over a real socket on purpose: openai 3.x uses httpx2, which
HTTP-mocking libraries do not intercept, and a socket also exercises real timeouts.

`mode` picks the behaviour of the next request: a normal answer, a stall that never answers
(released by `close()`), a stream that stops after its first chunk (`stall_mid`), an HTTP 401
(key refused), 404 (unknown model), 429 or 500 with an OpenAI-style error body, a 200 whose
body is not JSON, an empty answer, a ~100 KB answer, or a stream paced at `delay_s` per chunk.
Every request body is kept in `requests`, in order, before the mode applies.

It deliberately does not imitate tokenisation, tools/function calls, logprobs or
authentication (mode "unauthorized" refuses every key instead), and token counts are word
counts.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Literal

from aiohttp import web

StubMode = Literal[
    "answer",
    "stall",
    "stall_mid",
    "rate_limit",
    "error",
    "unauthorized",
    "not_found",
    "garbage",
    "empty",
    "huge",
    "slow",
]
Responder = Callable[[list[dict[str, Any]]], str]

DEFAULT_REPLY = "Happy to help! What would you like to know?"
DEFAULT_MODEL = "stub-model"
HUGE_REPLY_CHARS = 102_400
WORDS_PER_CHUNK = 3
HUGE_CHUNK_CHARS = 4096
_HOST = "127.0.0.1"
_SHUTDOWN_TIMEOUT_S = 2.0
_GARBAGE_JSON = '{"id": "chatcmpl-stub", "object": "chat.completion", "choi'
_GARBAGE_SSE = b'data: {"id": "chatcmpl-stub", "choices": [{"delta": {"con\n\n'


class StubLLM:
    """An OpenAI-compatible chat server whose behaviour the caller sets per request.

    `reply` (or `responder(messages)`, when set) is the answer text; `mode`, `reply`,
    `responder` and `delay_s` may be changed at any time and apply to the next request.
    """

    def __init__(
        self, reply: str = DEFAULT_REPLY, mode: StubMode = "answer", delay_s: float = 0.0
    ) -> None:
        self.reply = reply
        self.mode: StubMode = mode
        self.delay_s = delay_s
        self.responder: Responder | None = None
        self.model = DEFAULT_MODEL
        self.requests: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        # Set by close(): releases stalled requests and cuts delays short, so that the
        # runner's cleanup finds no handler still waiting and close() returns promptly.
        self._closing = asyncio.Event()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("StubLLM is not started; call start() or use `async with`")
        return self._base_url

    async def start(self) -> str:
        """Listen on 127.0.0.1 on a free port and return the base URL (ending in /v1)."""
        if self._base_url is not None:
            return self._base_url
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_get("/v1/models", self._models)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        site = web.TCPSite(runner, _HOST, 0)
        await site.start()
        self._closing = asyncio.Event()
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self._base_url = f"http://{host}:{port}/v1"
        return self._base_url

    async def close(self) -> None:
        """Release stalled requests and stop the server; safe to call twice."""
        self._closing.set()
        runner, self._runner = self._runner, None
        self._base_url = None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> StubLLM:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- handlers ---------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": self.model, "object": "model", "created": 0, "owned_by": "tcai-stub"}
                ],
            }
        )

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "We could not parse the JSON body of your request.", "invalid_json")
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object.", "invalid_request")
        self.requests.append(body)
        mode = self.mode
        if await self._pause(self.delay_s):
            return _error(503, "The stub LLM is shutting down.", "server_closing")

        if mode == "stall":
            await self._closing.wait()
            return _error(503, "The stub LLM is shutting down.", "server_closing")
        if mode == "rate_limit":
            return _error(
                429,
                "Rate limit reached for requests. Please try again in 1s.",
                "rate_limit_exceeded",
                error_type="requests",
                headers={"retry-after": "1"},
            )
        if mode == "unauthorized":
            return _error(
                401,
                "Incorrect API key provided. You can find your API key in your account.",
                "invalid_api_key",
            )
        if mode == "not_found":
            return _error(
                404,
                f"The model `{body.get('model')}` does not exist or you do not have access to it.",
                "model_not_found",
            )
        if mode == "error":
            return _error(
                500,
                "The server had an error while processing your request. Sorry about that!",
                None,
                error_type="server_error",
            )

        raw_messages = body.get("messages")
        messages = (
            [m for m in raw_messages if isinstance(m, dict)]
            if isinstance(raw_messages, list)
            else []
        )
        content = self._content_for(mode, messages)
        model = str(body.get("model") or self.model)
        if body.get("stream") is True:
            stream_options = body.get("stream_options")
            include_usage = isinstance(stream_options, dict) and bool(
                stream_options.get("include_usage")
            )
            return await self._stream(request, mode, messages, content, model, include_usage)
        if mode == "garbage":
            return web.Response(
                status=200,
                text=_GARBAGE_JSON,
                content_type="application/json",
            )
        return web.json_response(_completion(model, messages, content))

    def _content_for(self, mode: StubMode, messages: list[dict[str, Any]]) -> str:
        if mode == "empty":
            return ""
        if mode == "huge":
            return _huge_text()
        if self.responder is not None:
            return self.responder(messages)
        return self.reply

    async def _stream(
        self,
        request: web.Request,
        mode: StubMode,
        messages: list[dict[str, Any]],
        content: str,
        model: str,
        include_usage: bool,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200,
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"},
        )
        await response.prepare(request)
        chunk_id = _completion_id()
        created = int(time.time())

        def chunk(delta: dict[str, str], finish_reason: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return _chunk(chunk_id, created, model, [choice], include_usage)

        try:
            await _send(response, chunk({"role": "assistant", "content": ""}))
            if mode == "garbage":
                await response.write(_GARBAGE_SSE)
                await response.write_eof()
                return response
            pieces = _huge_pieces(content) if mode == "huge" else _word_groups(content)
            for index, piece in enumerate(pieces):
                if mode == "slow" and index > 0 and await self._pause(self.delay_s):
                    await response.write_eof()
                    return response
                await _send(response, chunk({"content": piece}))
                if mode == "stall_mid" and index == 0:
                    await self._closing.wait()  # part of an answer, then nothing more
                    return response
            await _send(response, chunk({}, finish_reason="stop"))
            if include_usage:
                usage = _usage(messages, content)
                await _send(response, {**_chunk(chunk_id, created, model, [], False), **usage})
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionResetError:
            # The client went away (a timeout or a cancelled stream): nothing left to send.
            pass
        return response

    async def _pause(self, seconds: float) -> bool:
        """Sleep `seconds`, returning True at once if the stub is closing."""
        if seconds <= 0:
            return self._closing.is_set()
        try:
            await asyncio.wait_for(self._closing.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True


# -- response shapes ------------------------------------------------------------------------


def _completion_id() -> str:
    return f"chatcmpl-stub{uuid.uuid4().hex[:24]}"


def _usage(messages: list[dict[str, Any]], content: str) -> dict[str, Any]:
    prompt_tokens = sum(len(str(message.get("content") or "").split()) for message in messages)
    completion_tokens = len(content.split())
    return {
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
    }


def _completion(model: str, messages: list[dict[str, Any]], content: str) -> dict[str, Any]:
    return {
        "id": _completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        **_usage(messages, content),
    }


def _chunk(
    chunk_id: str, created: int, model: str, choices: list[dict[str, Any]], with_usage: bool
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": None,
        "choices": choices,
    }
    if with_usage:
        # With stream_options.include_usage, OpenAI sends `"usage": null` on every content
        # chunk and the totals on one final chunk whose choices are empty.
        data["usage"] = None
    return data


def _error(
    status: int,
    message: str,
    code: str | None,
    *,
    error_type: str = "invalid_request_error",
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return web.json_response(body, status=status, headers=headers)


async def _send(response: web.StreamResponse, data: dict[str, Any]) -> None:
    await response.write(f"data: {json.dumps(data)}\n\n".encode())


def _word_groups(text: str) -> Iterator[str]:
    """Split into chunks of a few words each; the chunks concatenate back to `text`."""
    if not text:
        return
    words = text.split(" ")
    for start in range(0, len(words), WORDS_PER_CHUNK):
        group = " ".join(words[start : start + WORDS_PER_CHUNK])
        yield group if start == 0 else " " + group


def _huge_pieces(text: str) -> Iterator[str]:
    for start in range(0, len(text), HUGE_CHUNK_CHARS):
        yield text[start : start + HUGE_CHUNK_CHARS]


def _huge_text() -> str:
    sentence = "This is a deliberately long answer from the stub LLM. "
    repeats = HUGE_REPLY_CHARS // len(sentence) + 1
    return (sentence * repeats)[:HUGE_REPLY_CHARS]
