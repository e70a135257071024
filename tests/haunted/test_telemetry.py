"""Traces across Kafka: a login, from POST /graphql to the Socket.IO emit, is one trace
(the batch consumer linked to it, per the messaging conventions), and log lines
carry its ids."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from haunted.settings import Settings
from haunted.telemetry import sample_ratio, traces_url
from tests.conftest import (
    LOGIN,
    PASSWORD,
    Server,
    SpanCollector,
    eventually,
    make_settings,
    register,
    serve,
)


@pytest.fixture
async def traced(spans: SpanCollector, settings: Settings) -> AsyncIterator[Server]:
    async with serve(settings) as running:
        yield running


def _trace_of(spans: list[ReadableSpan], trace_id: int) -> list[ReadableSpan]:
    return [span for span in spans if span.context.trace_id == trace_id]


def _parent_of(span: ReadableSpan, spans: list[ReadableSpan]) -> ReadableSpan:
    assert span.parent is not None, span.name
    (parent,) = [s for s in spans if s.context.span_id == span.parent.span_id]
    return parent


async def test_a_login_is_one_trace_from_the_request_to_the_socketio_emit(
    traced: Server, spans: SpanCollector
) -> None:
    registered = await register(traced)
    user = registered["user"]
    received: asyncio.Queue[Any] = asyncio.Queue()
    sio = socketio.AsyncClient(reconnection=False)
    sio.on("user.logged_in", received.put_nowait)
    await sio.connect(
        traced.url, auth={"token": registered["token"]}, transports=["websocket"], wait_timeout=10
    )
    try:
        login = await traced.graphql(LOGIN, {"email": user["email"], "password": PASSWORD})
        assert "errors" not in login, login
        pushed = await asyncio.wait_for(received.get(), 10)
    finally:
        await sio.disconnect()

    async def login_operation() -> ReadableSpan | None:
        found = [s for s in spans.spans if s.name == "mutation" and _is_login(s, spans.spans)]
        return found[0] if found else None

    operation = await eventually(login_operation)
    trace_id = operation.context.trace_id

    async def emitted() -> list[ReadableSpan]:
        return [
            s for s in _trace_of(spans.spans, trace_id) if s.name == "socketio emit user.logged_in"
        ]

    (emit,) = await eventually(emitted)
    everything = _trace_of(spans.spans, trace_id)

    # POST /graphql (the ASGI server span) -> the GraphQL operation span.
    server_span = _parent_of(operation, everything)
    assert server_span.kind is SpanKind.SERVER and server_span.name == "POST /graphql"
    assert dict(operation.attributes or {})["graphql.operation.type"] == "mutation"
    # The outbox commit: the INSERT into outbox is a statement of the operation's trace.
    assert any(
        s.kind is SpanKind.CLIENT and "outbox" in str((s.attributes or {}).get("db.statement"))
        for s in everything
    )
    # The relay's produce: a PRODUCER span, child of the operation that added the event.
    (publish,) = [s for s in everything if s.name == "publish user.logged_in"]
    assert publish.kind is SpanKind.PRODUCER
    assert _is_under(publish, operation, everything)
    # The fan-out consumer's span is the publish span's child; the emit is under it.
    fanout = _parent_of(emit, everything)
    assert fanout.name == "process user.logged_in" and fanout.kind is SpanKind.CONSUMER
    assert _parent_of(fanout, everything) is publish
    assert pushed["id"] == dict(fanout.attributes or {})["messaging.message.id"]

    # Analytics reads batches: its span links to the publish span (one link per record).
    async def analytics_linked() -> list[ReadableSpan]:
        return [
            s
            for s in spans.named("process haunted.analytics")
            if any(link.context.span_id == publish.context.span_id for link in s.links)
        ]

    (batch,) = await eventually(analytics_linked)
    assert batch.kind is SpanKind.CONSUMER

    # Notifications handles the registration in that registration's trace.
    async def notifications_processed() -> list[ReadableSpan]:
        return [
            s
            for s in spans.named("process user.registered")
            if dict(s.attributes or {}).get("messaging.consumer.group.name")
            == "haunted.notifications"
        ]

    (notified,) = await eventually(notifications_processed)
    registration = _trace_of(spans.spans, notified.context.trace_id)
    assert any(s.name == "publish user.registered" for s in registration)
    assert any(s.name == "POST /graphql" for s in registration)

    # No variables and no PII in any span.
    for span in spans.spans:
        text = repr(dict(span.attributes or {})) + span.name
        assert user["email"] not in text and PASSWORD not in text
        assert registered["token"] not in text


def _is_login(span: ReadableSpan, spans: list[ReadableSpan]) -> bool:
    return dict(span.attributes or {}).get("graphql.operation.type") == "mutation" and any(
        s.name == "publish user.logged_in" and s.context.trace_id == span.context.trace_id
        for s in spans
    )


def _is_under(span: ReadableSpan, ancestor: ReadableSpan, spans: list[ReadableSpan]) -> bool:
    while span.parent is not None:
        span = _parent_of(span, spans)
        if span is ancestor:
            return True
    return False


def test_export_goes_to_the_base_url_v1_traces_and_sampling_defaults() -> None:
    assert traces_url(make_settings()) is None
    assert (
        traces_url(make_settings(otlp_endpoint="http://collector:4318/"))
        == "http://collector:4318/v1/traces"
    )
    assert sample_ratio(make_settings(env="dev")) == 1.0
    assert sample_ratio(make_settings(trace_sample_ratio=0.25)) == 0.25
