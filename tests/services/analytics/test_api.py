"""Tracking and questions through the GraphQL API: track -> outbox -> Kafka -> store -> answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from haunted.settings import Settings
from tests.conftest import Server, eventually, register

TRACK = "mutation($n: String!, $p: JSON) { track(name: $n, properties: $p) }"
COUNTS = '{ eventCounts(names: ["opened", "saved"]) { name count } }'
QUESTIONS = """
query($from: DateTime!, $to: DateTime!) {
  eventCounts(names: ["opened", "saved"]) { name count }
  activeUsers(period: DAY, from: $from, to: $to) { start users }
  funnel(steps: ["opened", "saved"], window: 60) { name users conversion }
  usage(period: DAY, from: $from, to: $to) { start prompts promptTokens costUsd }
}"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # No cache: the test polls until the consumer has stored the events.
    analytics = settings.analytics.model_copy(update={"cache_ttl_s": 0})
    return settings.model_copy(update={"analytics": analytics})


async def test_tracked_events_answer_the_questions(server: Server) -> None:
    user = await register(server)
    token = user["token"]
    for name in ("opened", "saved"):
        body = await server.graphql(TRACK, {"n": name, "p": {"from": "test"}}, token)
        assert body == {"data": {"track": True}}, body
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    window = {"from": today.isoformat(), "to": (today + timedelta(days=1)).isoformat()}

    async def stored() -> bool:
        body = await server.graphql(COUNTS, token=token)
        return len(body["data"]["eventCounts"]) == 2

    # Wait for both events before asking: the questions of one request read at
    # different moments, so asking while the consumer writes could mix states.
    await eventually(stored, timeout_s=30)
    body = await server.graphql(QUESTIONS, window, token)
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    assert data["eventCounts"] == [{"name": "opened", "count": 1}, {"name": "saved", "count": 1}]
    assert data["activeUsers"] == [{"start": window["from"].replace("+00:00", "Z"), "users": 1}]
    assert data["funnel"] == [
        {"name": "opened", "users": 1, "conversion": 1.0},
        {"name": "saved", "users": 1, "conversion": 1.0},
    ]
    assert data["usage"][0]["prompts"] == 0

    bad = await server.graphql(
        TRACK, {"n": "ok", "p": {"a": {"b": {"c": {"d": {"e": {}}}}}}}, token
    )
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    anonymous = await server.graphql(QUESTIONS, window)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
