"""LLM gateway: prompts as code, usage and quotas (issue: LLM gateway)."""

from services.llm.handlers import CONSUMER, TOPICS, build_router, clear_store, on_subscription
from services.llm.prompts import Prompt, PromptFileError, PromptLibrary
from services.llm.provider import OFFLINE_MODEL, build_provider
from services.llm.service import LlmConfig, LlmService, LlmUsage, PromptResult, StreamItem

__all__ = [
    "CONSUMER",
    "OFFLINE_MODEL",
    "TOPICS",
    "LlmConfig",
    "LlmService",
    "LlmUsage",
    "Prompt",
    "PromptFileError",
    "PromptLibrary",
    "PromptResult",
    "StreamItem",
    "build_provider",
    "build_router",
    "clear_store",
    "on_subscription",
]
