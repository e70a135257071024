"""Events owned by the LLM gateway: the outcome of every prompt call."""

from __future__ import annotations

from typing import ClassVar

from schemas.base import Audience, Event


class _PromptEvent(Event):
    source: ClassVar[str] = "llm"
    key_field: ClassVar[str] = "team_id"
    audience: ClassVar[Audience] = Audience.USER


class PromptCompleted(_PromptEvent):
    """A prompt ran; tokens and cost are what the provider billed."""

    topic: ClassVar[str] = "prompt.completed"
    request_id: str
    user_id: str
    team_id: str
    prompt_path: str
    prompt_version: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int
    cost_usd: float
    cached: bool


class PromptFailed(_PromptEvent):
    topic: ClassVar[str] = "prompt.failed"
    request_id: str
    user_id: str
    team_id: str
    prompt_path: str
    error_code: str


# This module's topics, in the catalog's order (schemas.CATALOG reads it).
EVENTS: tuple[type[Event], ...] = (
    PromptCompleted,
    PromptFailed,
)
