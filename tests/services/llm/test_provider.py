"""The providers against the local OpenAI-compatible server, through the real client."""

from __future__ import annotations

import pytest

from services.llm.provider import (
    OFFLINE_MODEL,
    ChatRequest,
    Completion,
    EchoProvider,
    OpenAIProvider,
    ProviderError,
    StreamCut,
)
from tests.services.llm.openai_server import FakeOpenAI, Fault

REQUEST = ChatRequest("m-primary", [{"role": "user", "content": "one two three"}], 0.0, 20)


def provider(fake: FakeOpenAI, timeout_s: float = 5.0) -> OpenAIProvider:
    return OpenAIProvider(
        api_key=None, base_url=fake.url, timeout_s=timeout_s, connect_timeout_s=timeout_s
    )


async def collect(openai: OpenAIProvider) -> tuple[list[str], Completion]:
    deltas: list[str] = []
    final: Completion | None = None
    async for part in openai.stream(REQUEST):
        if isinstance(part, Completion):
            final = part
        else:
            deltas.append(part)
    assert final is not None
    return deltas, final


async def test_complete_returns_text_and_usage(fake_openai: FakeOpenAI) -> None:
    openai = provider(fake_openai)
    completion = await openai.complete(REQUEST)
    await openai.close()
    assert completion.text == "reply from m-primary: one two three"
    assert (completion.prompt_tokens, completion.completion_tokens) == (3, 6)
    assert fake_openai.requests[0]["max_tokens"] == 20


async def test_stream_yields_deltas_then_the_providers_usage(fake_openai: FakeOpenAI) -> None:
    openai = provider(fake_openai)
    deltas, final = await collect(openai)
    await openai.close()
    assert "".join(deltas) == final.text == "reply from m-primary: one two three"
    assert len(deltas) == 6
    assert (final.prompt_tokens, final.completion_tokens) == (3, 6)
    assert fake_openai.requests[0]["stream_options"] == {"include_usage": True}


async def test_stream_without_usage_is_counted(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail("m-primary", Fault(no_usage=True))
    openai = provider(fake_openai)
    _, final = await collect(openai)
    await openai.close()
    assert final.prompt_tokens > 0 and final.completion_tokens > 0


@pytest.mark.parametrize(
    ("fault", "code", "retryable", "retry_after"),
    [
        (Fault(status=429, retry_after="7"), "PROVIDER_RATE_LIMITED", True, 7.0),
        (Fault(status=500), "PROVIDER_500", True, None),
        (Fault(status=400), "PROVIDER_400", False, None),
    ],
)
async def test_errors_say_whether_to_retry(
    fake_openai: FakeOpenAI, fault: Fault, code: str, retryable: bool, retry_after: float | None
) -> None:
    fake_openai.fail("m-primary", fault)
    openai = provider(fake_openai)
    with pytest.raises(ProviderError) as raised:
        await openai.complete(REQUEST)
    await openai.close()
    assert (raised.value.code, raised.value.retryable) == (code, retryable)
    assert raised.value.retry_after_s == retry_after
    assert len(fake_openai.requests) == 1  # the client itself never retries


async def test_timeout_is_retryable(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail("m-primary", Fault(delay_s=1.0))
    openai = provider(fake_openai, timeout_s=0.2)
    with pytest.raises(ProviderError) as raised:
        await openai.complete(REQUEST)
    await openai.close()
    assert raised.value.code == "TIMEOUT" and raised.value.retryable


async def test_stream_cut_midway_keeps_the_partial_text(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail("m-primary", Fault(cut_after=2))
    openai = provider(fake_openai)
    with pytest.raises(StreamCut) as raised:
        await collect(openai)
    await openai.close()
    assert raised.value.partial.text == "reply from"
    assert raised.value.partial.completion_tokens > 0


async def test_malformed_chunk_is_a_bad_answer(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail("m-primary", Fault(malformed=True))
    openai = provider(fake_openai)
    with pytest.raises(ProviderError) as raised:
        await collect(openai)
    await openai.close()
    assert raised.value.code in ("BAD_RESPONSE", "STREAM_CUT")


async def test_offline_echo_is_deterministic() -> None:
    echo = EchoProvider()
    first = await echo.complete(REQUEST)
    assert first == await echo.complete(REQUEST)
    assert first.model == OFFLINE_MODEL and first.text == f"[{OFFLINE_MODEL}] one two three"
    parts = [part async for part in echo.stream(REQUEST)]
    assert "".join(p for p in parts if isinstance(p, str)) == first.text
    assert parts[-1] == first
