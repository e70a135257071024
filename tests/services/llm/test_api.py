"""The LLM gateway end to end on a running server with the offline model: GraphQL
query, mutation and subscription, and prompt.completed reaching analytics and sockets."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import websockets
from sqlalchemy import func, select

from services.analytics.models import AnalyticsEvent
from services.llm import OFFLINE_MODEL
from tests.conftest import Server, eventually, register

CALL = """
mutation($path: String!, $variables: JSON) {
  callPrompt(path: $path, variables: $variables) {
    requestId text model promptTokens completionTokens cached costUsd
  }
}"""
STREAM = """
subscription($path: String!, $variables: JSON) {
  promptStream(path: $path, variables: $variables) {
    requestId delta done model promptTokens completionTokens
  }
}"""
EVENTS = 'subscription { events(types: ["prompt.completed"]) { type data } }'


async def operation(ws: Any, query: str, variables: dict[str, Any] | None = None) -> str:
    operation_id = uuid.uuid4().hex
    payload = {"query": query, "variables": variables or {}}
    await ws.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": payload}))
    return operation_id


async def messages_of(ws: Any, operation_id: str, until: str = "complete") -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 15))
        if message.get("id") != operation_id:
            continue
        received.append(message)
        if message["type"] in (until, "error"):
            return received


async def test_prompts_run_stream_and_are_metered(server: Server) -> None:
    user = await register(server)
    token = user["token"]
    listed = await server.graphql(
        "{ prompts { path version model variables description fallbackModels } }", token=token
    )
    paths = {prompt["path"]: prompt for prompt in listed["data"]["prompts"]}
    assert paths["summarize"]["variables"] == ["text", "sentences", "language"]

    bad = await server.graphql(CALL, {"path": "summarize", "variables": {"txt": 1}}, token)
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert {v["name"] for v in bad["errors"][0]["extensions"]["variables"]} == {"txt", "text"}

    url = server.url.replace("http", "ws") + "/graphql"
    async with websockets.connect(
        url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    ) as ws:
        init = {"authorization": f"Bearer {token}"}
        await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"type": "connection_ack"}
        before = server.haunted.hub.listener_count
        events_id = await operation(ws, EVENTS)

        async def listening() -> bool:
            return server.haunted.hub.listener_count > before

        await eventually(listening)

        called = await server.graphql(
            CALL, {"path": "summarize", "variables": {"text": "ghosts are real"}}, token
        )
        result = called["data"]["callPrompt"]
        assert result["model"] == OFFLINE_MODEL and "ghosts are real" in result["text"]
        assert result["promptTokens"] > 0 and result["costUsd"] == 0.0

        [pushed] = await messages_of(ws, events_id, until="next")
        data = pushed["payload"]["data"]["events"]["data"]
        assert data["request_id"] == result["requestId"] and data["model"] == OFFLINE_MODEL

        stream_id = await operation(
            ws, STREAM, {"path": "classify", "variables": {"text": "boo", "labels": ["a", "b"]}}
        )
        streamed = await messages_of(ws, stream_id)
        items = [m["payload"]["data"]["promptStream"] for m in streamed if m["type"] == "next"]
        assert streamed[-1]["type"] == "complete"
        *deltas, final = items
        assert len(deltas) > 1 and all(not item["done"] for item in deltas)
        assert "".join(item["delta"] for item in deltas).startswith(f"[{OFFLINE_MODEL}]")
        assert final["done"] and final["completionTokens"] > 0

    team_id = user["user"]["memberships"][0]["team"]["id"]

    async def analytics_stored_both() -> bool:
        query = select(func.count()).where(
            AnalyticsEvent.type == "prompt.completed", AnalyticsEvent.team_id == team_id
        )
        async with server.haunted.db.read() as session:
            return (await session.execute(query)).scalar_one() == 2

    # Analytics caches its answers: ask it once the rows are there.
    await eventually(analytics_stored_both, timeout_s=20)
    counts = await server.graphql(
        '{ eventCounts(names: ["prompt.completed"]) { name count } }', token=token
    )
    assert counts["data"]["eventCounts"] == [{"name": "prompt.completed", "count": 2}]
    usage = await server.graphql("{ llmUsage { planId tokensUsed tokensPerPeriod } }", token=token)
    assert usage["data"]["llmUsage"]["planId"] == "free"
    expected = result["promptTokens"] + result["completionTokens"]
    assert usage["data"]["llmUsage"]["tokensUsed"] > expected


SPECS = """
{ prompts { path variables variableSpecs { name type required description maxLength default } } }"""


async def test_each_prompt_declares_its_variables_types_and_limits(server: Server) -> None:
    """The web app builds a form per prompt from these: they mirror the front matter."""
    token = (await register(server))["token"]
    listed = await server.graphql(SPECS, token=token)
    assert "errors" not in listed, listed
    prompts = {prompt["path"]: prompt for prompt in listed["data"]["prompts"]}
    summarize = prompts["summarize"]
    assert [spec["name"] for spec in summarize["variableSpecs"]] == summarize["variables"]
    assert summarize["variableSpecs"] == [
        {
            "name": "text",
            "type": "string",
            "required": True,
            "description": "the text to summarize",
            "maxLength": 50000,
            "default": None,
        },
        {
            "name": "sentences",
            "type": "integer",
            "required": False,
            "description": "",
            "maxLength": None,
            "default": 3,
        },
        {
            "name": "language",
            "type": "string",
            "required": False,
            "description": "",
            "maxLength": None,
            "default": "English",
        },
    ]
    labels = prompts["classify"]["variableSpecs"][1]
    assert labels == {
        "name": "labels",
        "type": "array",
        "required": True,
        "description": "the allowed labels",
        "maxLength": 50,
        "default": None,
    }
    anonymous = await server.graphql(SPECS)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
