"""The LLM call's budget and retry policy, against the stub server over a real socket."""

from __future__ import annotations

import pytest

from tcai.chat.llm import (
    MAX_REPLY_CHARS,
    LlmClient,
    LlmFailure,
    clip_reply,
    complete,
    make_llm_client,
)
from tcai.config import load_settings

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


@pytest.fixture
async def client(stub_llm):
    client = LlmClient("test-key", stub_llm.base_url)
    yield client
    await client.close()


async def test_answer(client, stub_llm) -> None:
    answer = await complete(client, model="m", messages=MESSAGES, budget_ms=2000)
    assert answer.text == stub_llm.reply and answer.attempts == 1


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        ("rate_limit", "rate_limited"),
        ("error", "status"),
        ("garbage", "garbage"),
        ("empty", "empty"),
    ],
)
async def test_one_retry_inside_the_budget_then_failure(client, stub_llm, mode, kind) -> None:
    stub_llm.mode = mode
    with pytest.raises(LlmFailure) as caught:
        await complete(client, model="m", messages=MESSAGES, budget_ms=3000)
    assert caught.value.kind == kind
    assert len(stub_llm.requests) == 2, "exactly one retry"


async def test_a_stall_uses_the_budget_once_and_never_retries(client, stub_llm) -> None:
    stub_llm.mode = "stall"
    with pytest.raises(LlmFailure) as caught:
        await complete(client, model="m", messages=MESSAGES, budget_ms=400)
    assert caught.value.kind == "timeout"
    assert len(stub_llm.requests) == 1


async def test_streaming_stall_before_the_first_token(client, stub_llm) -> None:
    stub_llm.mode = "stall"
    sent: list[str] = []

    async def sink(text: str) -> None:
        sent.append(text)

    with pytest.raises(LlmFailure):
        await complete(client, model="m", messages=MESSAGES, budget_ms=400, on_chunk=sink)
    assert sent == []


async def test_a_slow_stream_may_outlast_the_first_token_budget(client, stub_llm) -> None:
    stub_llm.mode, stub_llm.delay_s = "slow", 0.15
    stub_llm.reply = "one two three four five six seven eight nine ten"
    sent: list[str] = []

    async def sink(text: str) -> None:
        sent.append(text)

    answer = await complete(client, model="m", messages=MESSAGES, budget_ms=400, on_chunk=sink)
    assert answer.text == stub_llm.reply == "".join(sent)


def test_clip_reply() -> None:
    assert clip_reply("  short  ") == "short"
    long = ("This is a sentence. " * 200).strip()
    clipped = clip_reply(long)
    assert len(clipped) <= MAX_REPLY_CHARS and clipped.endswith(".")


def test_no_key_means_facts_mode(monkeypatch) -> None:
    assert make_llm_client(load_settings()) is None
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    client = make_llm_client(load_settings())
    assert client is not None and client.url == "http://127.0.0.1:9/v1/chat/completions"


async def test_a_crowd_is_not_queued_behind_a_connection_limit(client, stub_llm) -> None:
    """150 visitors asking at once all reach the LLM at once: none waits for another's
    answer to free a connection (aiohttp's default pool of 100 would hold back 50)."""
    import asyncio

    stub_llm.delay_s = 1.5
    calls = [
        asyncio.create_task(complete(client, model="m", messages=MESSAGES, budget_ms=5000))
        for _ in range(150)
    ]
    try:
        for _ in range(100):  # until every request arrived, or the first answers came
            await asyncio.sleep(0.02)
            if len(stub_llm.requests) == 150 or any(call.done() for call in calls):
                break
        arrived = len(stub_llm.requests)
        assert not any(call.done() for call in calls)
        assert arrived == 150
    finally:
        answers = await asyncio.gather(*calls)
    assert {answer.text for answer in answers} == {stub_llm.reply}
