"""Model providers: any OpenAI-compatible API through the official client, or offline echo.

Providers make one attempt per call; retries, backoff and fallbacks are the
service's (so Retry-After is honoured once, in one place). Errors come out as
ProviderError saying whether a retry may help and after how long.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import openai

from events.metrics import external_call

OFFLINE_MODEL = "offline-echo"


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: list[dict[str, str]]
    temperature: float
    max_tokens: int | None


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int


class ProviderError(Exception):
    """One failed attempt. `code` goes into prompt.failed; never carries prompt text."""

    def __init__(
        self, code: str, message: str, *, retryable: bool, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable
        self.retry_after_s = retry_after_s


class StreamCut(ProviderError):
    """The stream broke after some text was sent: it cannot be retried transparently."""

    def __init__(self, message: str, partial: Completion) -> None:
        super().__init__("STREAM_CUT", message, retryable=False)
        self.partial = partial


class Provider(Protocol):
    name: str

    async def complete(self, request: ChatRequest) -> Completion: ...

    def stream(self, request: ChatRequest) -> AsyncIterator[str | Completion]:
        """Text deltas, then one Completion with the usage."""
        ...

    async def close(self) -> None: ...


def estimate_tokens(text: str) -> int:
    """Tokens of a text when the provider does not say (about 4 characters a token)."""
    return math.ceil(len(text) / 4) if text else 0


def messages_tokens(messages: list[dict[str, str]]) -> int:
    return sum(estimate_tokens(message["content"]) + 4 for message in messages)


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if headers is None:
        return None
    for name in ("retry-after-ms", "retry-after"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / (1000 if name == "retry-after-ms" else 1)
        except ValueError:
            continue  # an HTTP date: rare from model APIs, use our backoff
        return max(0.0, seconds)
    return None


def _translate(error: Exception) -> ProviderError:
    if isinstance(error, openai.APITimeoutError):
        return ProviderError("TIMEOUT", "the model provider timed out", retryable=True)
    if isinstance(error, openai.APIConnectionError):
        return ProviderError("UNREACHABLE", "the model provider is unreachable", retryable=True)
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        retryable = status in (408, 409, 429) or status >= 500
        code = "PROVIDER_RATE_LIMITED" if status == 429 else f"PROVIDER_{status}"
        return ProviderError(
            code,
            f"the model provider answered {status}",
            retryable=retryable,
            retry_after_s=_retry_after(error.response.headers),
        )
    # Anything else mid-call (a dropped connection, a chunk that is not JSON) is the
    # provider's answer going wrong, not ours.
    return ProviderError("BAD_RESPONSE", "the model provider sent a bad answer", retryable=True)


class OpenAIProvider:
    """One AsyncOpenAI client for the process (its connection pool is shared)."""

    name = "openai"

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        timeout_s: float,
        connect_timeout_s: float,
    ) -> None:
        self._client = openai.AsyncOpenAI(
            # Local servers (Ollama, vLLM) take any key; the client insists on one.
            api_key=api_key or "unused",
            base_url=base_url,
            timeout=openai.Timeout(timeout_s, connect=connect_timeout_s),
            max_retries=0,
        )

    def _arguments(self, request: ChatRequest) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "temperature": request.temperature,
        }
        if request.max_tokens is not None:
            arguments["max_tokens"] = request.max_tokens
        return arguments

    async def complete(self, request: ChatRequest) -> Completion:
        try:
            with external_call("openai"):
                response = await self._client.chat.completions.create(**self._arguments(request))
            text = response.choices[0].message.content or ""
        except Exception as error:
            raise _translate(error) from error
        usage = response.usage
        if usage is None:
            return Completion(
                text,
                response.model or request.model,
                messages_tokens(request.messages),
                estimate_tokens(text),
            )
        return Completion(
            text, response.model or request.model, usage.prompt_tokens, usage.completion_tokens
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[str | Completion]:
        parts: list[str] = []
        model = request.model
        usage: Any = None
        try:
            with external_call("openai"):
                stream = await self._client.chat.completions.create(
                    **self._arguments(request), stream=True, stream_options={"include_usage": True}
                )
            async for chunk in stream:
                model = chunk.model or model
                if chunk.usage is not None:
                    usage = chunk.usage
                for choice in chunk.choices:
                    delta = choice.delta.content if choice.delta is not None else None
                    if delta:
                        parts.append(delta)
                        yield delta
        except Exception as error:
            translated = _translate(error)
            if parts:
                text = "".join(parts)
                partial = Completion(
                    text, model, messages_tokens(request.messages), estimate_tokens(text)
                )
                raise StreamCut(str(translated), partial) from error
            raise translated from error
        text = "".join(parts)
        if usage is not None:
            yield Completion(text, model, usage.prompt_tokens, usage.completion_tokens)
        else:  # the provider ignored include_usage: count what was sent and received
            yield Completion(text, model, messages_tokens(request.messages), estimate_tokens(text))

    async def close(self) -> None:
        await self._client.close()


class EchoProvider:
    """The offline model: answers with the last message, deterministically, for free."""

    name = OFFLINE_MODEL

    def _answer(self, request: ChatRequest) -> Completion:
        text = f"[{OFFLINE_MODEL}] {request.messages[-1]['content']}"
        if request.max_tokens is not None:
            text = " ".join(text.split(" ")[: request.max_tokens])
        prompt_tokens = sum(len(message["content"].split()) for message in request.messages)
        return Completion(text, OFFLINE_MODEL, prompt_tokens, len(text.split()))

    async def complete(self, request: ChatRequest) -> Completion:
        return self._answer(request)

    async def stream(self, request: ChatRequest) -> AsyncIterator[str | Completion]:
        answer = self._answer(request)
        words = answer.text.split(" ")
        for index, word in enumerate(words):
            yield word if index == 0 else " " + word
        yield answer

    async def close(self) -> None:
        return None


def build_provider(
    *, api_key: str | None, base_url: str | None, timeout_s: float, connect_timeout_s: float
) -> Provider:
    """OpenAI-compatible when a key or a base URL is set; the offline echo model otherwise."""
    if api_key is None and base_url is None:
        return EchoProvider()
    return OpenAIProvider(
        api_key=api_key,
        base_url=base_url,
        timeout_s=timeout_s,
        connect_timeout_s=connect_timeout_s,
    )
