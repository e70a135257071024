"""LLM gateway: prompts as code, usage and quotas (issue: LLM gateway)."""
