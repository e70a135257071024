"""LLM gateway: prompts as code, usage and quotas (issue: LLM gateway)."""

from services.llm.handlers import CONSUMER, HANDLERS, on_subscription
from services.llm.prompts import Prompt, PromptFileError, PromptLibrary
from services.llm.provider import OFFLINE_MODEL, build_provider
from services.llm.service import (
    LlmConfig,
    LlmService,
    LlmUsage,
    PlanQuota,
    PromptResult,
    StreamItem,
)

__all__ = [
    "CONSUMER",
    "HANDLERS",
    "OFFLINE_MODEL",
    "LlmConfig",
    "LlmService",
    "LlmUsage",
    "PlanQuota",
    "Prompt",
    "PromptFileError",
    "PromptLibrary",
    "PromptResult",
    "StreamItem",
    "build_provider",
    "on_subscription",
]
