"""The stub LLM, driven through the real openai SDK: every mode parses (or fails) as the
SDK would against a real OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tcai.quality.stub_llm import StubLLM

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "system", "content": "You are the assistant of Bright Smile Dental."},
    {"role": "user", "content": "Do you open on Saturdays?"},
]
REPLY = "Yes, we open on Saturdays from nine to one. Would you like to book a visit?"


@pytest.fixture
async def stub() -> AsyncIterator[StubLLM]:
    async with StubLLM(reply=REPLY) as running:
        yield running


def make_client(stub: StubLLM, timeout: float = 5.0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=stub.base_url, api_key="test-key", max_retries=0, timeout=timeout
    )


async def complete(stub: StubLLM, timeout: float = 5.0) -> str | None:
    async with make_client(stub, timeout) as client:
        completion = await client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert completion.object == "chat.completion"
    assert completion.choices[0].finish_reason == "stop"
    return completion.choices[0].message.content


async def stream(stub: StubLLM, **extra: Any) -> list[str]:
    """The content deltas of one streamed completion, in order."""
    async with make_client(stub) as client:
        chunks = await client.chat.completions.create(
            model="gpt-test", messages=MESSAGES, stream=True, **extra
        )
        deltas = []
        async for chunk in chunks:
            assert chunk.object == "chat.completion.chunk"
            if chunk.choices and chunk.choices[0].delta.content:
                deltas.append(chunk.choices[0].delta.content)
    return deltas


async def test_answer_parses_as_a_chat_completion(stub: StubLLM) -> None:
    async with make_client(stub) as client:
        completion = await client.chat.completions.create(model="gpt-test", messages=MESSAGES)

    assert completion.choices[0].message.content == REPLY
    assert completion.choices[0].message.role == "assistant"
    assert completion.model == "gpt-test"
    assert completion.id.startswith("chatcmpl-")
    assert completion.usage is not None
    assert completion.usage.completion_tokens == len(REPLY.split())
    assert completion.usage.total_tokens > completion.usage.completion_tokens


async def test_stream_arrives_in_several_chunks_that_rebuild_the_reply(stub: StubLLM) -> None:
    deltas = await stream(stub)

    assert len(deltas) > 2
    assert "".join(deltas) == REPLY


async def test_stream_reports_usage_when_asked(stub: StubLLM) -> None:
    async with make_client(stub) as client:
        chunks = await client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        usages = [chunk.usage async for chunk in chunks if chunk.usage is not None]

    assert len(usages) == 1
    assert usages[0].completion_tokens == len(REPLY.split())


async def test_models_lists_the_stub_model(stub: StubLLM) -> None:
    async with make_client(stub) as client:
        models = [model.id async for model in client.models.list()]

    assert models == ["stub-model"]


async def test_rate_limit_raises_rate_limit_error_with_retry_after(stub: StubLLM) -> None:
    stub.mode = "rate_limit"

    with pytest.raises(openai.RateLimitError) as caught:
        await complete(stub)

    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.code == "rate_limit_exceeded"


@pytest.mark.parametrize("streaming", [False, True])
async def test_error_raises_internal_server_error(stub: StubLLM, streaming: bool) -> None:
    stub.mode = "error"

    with pytest.raises(openai.InternalServerError) as caught:
        if streaming:
            await stream(stub)
        else:
            await complete(stub)

    assert caught.value.status_code == 500
    assert caught.value.type == "server_error"


async def test_garbage_body_raises_json_decode_error(stub: StubLLM) -> None:
    # openai 3.x does not wrap a body that claims to be JSON but is not: the SDK's
    # `response.json()` raises json.JSONDecodeError straight through to the caller, which
    # is why the chat engine's failsafe must catch more than openai.APIError.
    stub.mode = "garbage"

    with pytest.raises(json.JSONDecodeError):
        await complete(stub)


async def test_garbage_stream_raises_json_decode_error(stub: StubLLM) -> None:
    # Same for a malformed SSE data line: the SDK's `sse.json()` is a bare json.loads.
    stub.mode = "garbage"

    with pytest.raises(json.JSONDecodeError):
        await stream(stub)


async def test_empty_gives_an_empty_answer(stub: StubLLM) -> None:
    stub.mode = "empty"

    assert await complete(stub) == ""
    assert await stream(stub) == []


async def test_huge_gives_at_least_100_kb(stub: StubLLM) -> None:
    stub.mode = "huge"

    content = await complete(stub)
    deltas = await stream(stub)

    assert content is not None
    assert len(content) >= 100_000
    assert "".join(deltas) == content


async def test_stall_times_out_and_close_returns_promptly() -> None:
    stub = StubLLM(mode="stall")
    await stub.start()
    try:
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            await complete(stub, timeout=0.5)
        assert time.monotonic() - started < 2.0
    finally:
        started = time.monotonic()
        await stub.close()
        assert time.monotonic() - started < 1.0
    # The stalled handler was released, not left pending on the loop.
    assert {task for task in asyncio.all_tasks() if task is not asyncio.current_task()} == set()


async def test_stall_applies_to_streams_too(stub: StubLLM) -> None:
    stub.mode = "stall"
    async with make_client(stub, timeout=0.5) as client:
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)


async def test_slow_streams_word_groups_delay_apart(stub: StubLLM) -> None:
    stub.mode = "slow"
    stub.delay_s = 0.05
    arrivals: list[float] = []
    async with make_client(stub) as client:
        chunks = await client.chat.completions.create(
            model="gpt-test", messages=MESSAGES, stream=True
        )
        deltas = []
        async for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                deltas.append(chunk.choices[0].delta.content)
                arrivals.append(time.monotonic())

    assert "".join(deltas) == REPLY
    assert arrivals[-1] - arrivals[0] >= 0.05 * (len(arrivals) - 1) * 0.8


async def test_delay_applies_before_answering(stub: StubLLM) -> None:
    stub.delay_s = 0.3

    started = time.monotonic()
    assert await complete(stub) == REPLY
    assert time.monotonic() - started >= 0.3

    with pytest.raises(openai.APITimeoutError):
        await complete(stub, timeout=0.1)


async def test_requests_are_recorded_even_when_the_mode_fails(stub: StubLLM) -> None:
    await complete(stub)
    stub.mode = "error"
    with pytest.raises(openai.InternalServerError):
        await complete(stub)

    assert len(stub.requests) == 2
    assert [request["messages"] for request in stub.requests] == [MESSAGES, MESSAGES]
    assert stub.requests[0]["model"] == "gpt-test"
    assert stub.requests[0]["messages"][0] == {
        "role": "system",
        "content": "You are the assistant of Bright Smile Dental.",
    }


async def test_responder_builds_the_reply_from_the_messages(stub: StubLLM) -> None:
    stub.responder = lambda messages: f"You asked: {messages[-1]['content']}"

    assert await complete(stub) == "You asked: Do you open on Saturdays?"
    assert "".join(await stream(stub)) == "You asked: Do you open on Saturdays?"


async def test_mode_and_reply_change_between_requests(stub: StubLLM) -> None:
    stub.mode = "rate_limit"
    with pytest.raises(openai.RateLimitError):
        await complete(stub)

    stub.mode = "answer"
    stub.reply = "Second answer."
    assert await complete(stub) == "Second answer."


async def test_base_url_needs_a_started_stub() -> None:
    stub = StubLLM()
    with pytest.raises(RuntimeError, match="not started"):
        _ = stub.base_url

    url = await stub.start()
    try:
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/v1")
        assert stub.base_url == url
    finally:
        await stub.close()
        await stub.close()
