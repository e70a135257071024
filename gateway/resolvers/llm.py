"""The LLM gateway: prompts, callPrompt, promptStream and usage over the llm facade."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from ariadne import MutationType, ObjectType, QueryType, SchemaBindable, SubscriptionType
from graphql import GraphQLResolveInfo

from gateway.graphql import Services
from gateway.push import PushHub
from gateway.resolvers.common import caller
from services.errors import BadUserInput
from services.llm import LlmService, LlmUsage, Prompt, PromptResult, StreamItem


def _variables(variables: Any) -> dict[str, Any] | None:
    if variables is not None and not isinstance(variables, dict):
        raise BadUserInput("variables must be a JSON object", field="variables")
    return variables


def bindables(services: Services, hub: PushHub) -> list[SchemaBindable]:
    llm: LlmService = services.llm
    query = QueryType()
    mutation = MutationType()
    subscription = SubscriptionType()
    template = ObjectType("PromptTemplate")

    @query.field("prompts")
    async def resolve_prompts(_: None, info: GraphQLResolveInfo) -> list[Prompt]:
        return await llm.prompts(caller(info))

    @query.field("llmUsage")
    async def resolve_usage(
        _: None, info: GraphQLResolveInfo, team_id: str | None = None
    ) -> LlmUsage:
        return await llm.usage(caller(info), team_id=team_id)

    @template.field("model")
    def resolve_model(prompt: Prompt, _: GraphQLResolveInfo) -> str:
        return prompt.spec.model

    @template.field("variables")
    def resolve_variables(prompt: Prompt, _: GraphQLResolveInfo) -> list[str]:
        return list(prompt.spec.variables)

    @template.field("variableSpecs")
    def resolve_variable_specs(prompt: Prompt, _: GraphQLResolveInfo) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "type": variable.type,
                "required": variable.required,
                "description": variable.description,
                "max_length": variable.max_length,
                "default": variable.default,
            }
            for name, variable in prompt.spec.variables.items()
        ]

    @template.field("description")
    def resolve_description(prompt: Prompt, _: GraphQLResolveInfo) -> str:
        return prompt.spec.description

    @template.field("fallbackModels")
    def resolve_fallbacks(prompt: Prompt, _: GraphQLResolveInfo) -> list[str]:
        return list(prompt.spec.fallback_models)

    @mutation.field("callPrompt")
    async def resolve_call_prompt(
        _: None, info: GraphQLResolveInfo, path: str, variables: Any = None
    ) -> PromptResult:
        return await llm.call_prompt(caller(info), path, _variables(variables))

    @subscription.source("promptStream")
    async def prompt_stream_source(
        _: None,
        info: GraphQLResolveInfo,
        path: str,
        variables: Any = None,
        team_id: str | None = None,
    ) -> AsyncGenerator[StreamItem, None]:
        stream = await llm.stream_prompt(caller(info), path, _variables(variables), team_id=team_id)
        async for item in stream:
            yield item

    @subscription.field("promptStream")
    def prompt_stream_field(item: StreamItem, _: GraphQLResolveInfo, **__: Any) -> StreamItem:
        return item

    return [query, mutation, subscription, template]
