"""The access log's server span (gateway/access.py): what a sampled request records,
and that an unsampled one records nothing, down to what it calls."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from prometheus_client import REGISTRY

from gateway.access import AccessLog
from tests.conftest import SpanCollector

TRACER = trace.get_tracer("tests.access")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


async def call(app: Any, headers: list[tuple[bytes, bytes]] | None = None) -> list[Any]:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/graphql",
        "headers": headers or [],
        "scheme": "http",
        "http_version": "1.1",
        "query_string": b"",
    }
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    await AccessLog(app, traced=True)(scope, receive, send)
    return sent


async def answering(scope: Any, receive: Any, send: Any) -> None:
    with TRACER.start_as_current_span("inside"):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


async def failing(scope: Any, receive: Any, send: Any) -> None:
    raise RuntimeError("boom")


async def test_a_sampled_request_is_a_server_span_with_its_children(
    spans: SpanCollector,
) -> None:
    await call(answering)
    [server] = spans.named("POST /graphql")
    [inside] = spans.named("inside")
    assert server.kind is trace.SpanKind.SERVER
    assert server.attributes is not None
    assert server.attributes["http.request.method"] == "POST"
    assert server.attributes["url.path"] == "/graphql"
    assert server.attributes["http.response.status_code"] == 200
    assert inside.parent is not None and inside.parent.span_id == server.context.span_id
    assert inside.context.trace_id == server.context.trace_id


async def test_a_caller_s_traceparent_is_the_parent(spans: SpanCollector) -> None:
    await call(answering, [(b"traceparent", f"00-{TRACE_ID}-00f067aa0ba902b7-01".encode())])
    [server] = spans.named("POST /graphql")
    assert format(server.context.trace_id, "032x") == TRACE_ID


async def test_an_unsampled_request_records_nothing_down_to_what_it_calls(
    spans: SpanCollector,
) -> None:
    sent = await call(answering, [(b"traceparent", f"00-{TRACE_ID}-00f067aa0ba902b7-00".encode())])
    assert sent[0]["status"] == 200
    await call(answering)  # a later sampled one: the positive marker
    assert [s.name for s in spans.spans] == ["inside", "POST /graphql"]
    assert all(format(s.context.trace_id, "032x") != TRACE_ID for s in spans.spans)


async def test_an_escaping_error_is_recorded_on_the_server_span(spans: SpanCollector) -> None:
    with pytest.raises(RuntimeError):
        await call(failing)
    [server] = spans.named("POST /graphql")
    assert server.status.status_code is trace.StatusCode.ERROR
    assert [event.name for event in server.events] == ["exception"]
    assert trace.get_current_span() is trace.INVALID_SPAN  # the context was restored


async def test_each_request_is_counted_under_its_method_and_status_class() -> None:
    """haunted_http_requests_total: the counter's children are kept between requests
    (gateway/access.py), each request still counted in its own."""

    def count(status: str) -> float:
        labels = {"method": "POST", "status": status}
        return REGISTRY.get_sample_value("haunted_http_requests_total", labels) or 0.0

    ok, failed = count("2xx"), count("5xx")
    await call(answering)
    await call(answering)
    with pytest.raises(RuntimeError):
        await call(failing)
    assert (count("2xx") - ok, count("5xx") - failed) == (2, 1)
