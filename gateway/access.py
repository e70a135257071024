"""Access lines and request metrics: one line per HTTP request and per WebSocket operation.

A line carries the method, the path, the GraphQL operation name(s), the status,
the duration, the request id and (from the log processors) the trace id. It
never carries the query text, the variables or any header value: what a
client sends may hold secrets and PII.

The request id is the client's `X-Request-ID` when it is a plain token, else a
fresh one; it is bound to every log line of the request (structlog context)
and sent back in the `X-Request-ID` response header.
"""

from __future__ import annotations

import functools
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog
from fastapi.telemetry import TelemetryConfig
from graphql import DocumentNode, OperationType, get_operation_ast
from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import Counter, Histogram

from gateway.errors import new_request_id

log = structlog.get_logger("haunted.access")
HTTP_TRACER = trace.get_tracer("haunted.gateway.http")
_PROPAGATOR = TraceContextTextMapPropagator()

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPERATIONS_KEY = "haunted.graphql_operations"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
# Operation names are chosen by clients: past this many distinct ones, "other".
MAX_OPERATION_NAMES = 200
_SKIPPED_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})
# For every FastAPI app of a process: no native telemetry (see AccessLog).
NO_FASTAPI_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

HTTP_REQUESTS = Counter(
    "haunted_http_requests_total", "HTTP requests by route and status class", ["method", "status"]
)
OPERATION_SECONDS = Histogram(
    "haunted_graphql_operation_seconds",
    "GraphQL operations by type, name and outcome (HTTP and WebSocket)",
    ["type", "operation", "outcome"],
)
for _type in ("query", "mutation", "subscription"):
    for _outcome in ("ok", "errors"):
        OPERATION_SECONDS.labels(_type, "anonymous", _outcome)

# The metrics' children by labels, kept: `labels()` validates the labels and takes the
# metric's lock on every call. As many entries as the metrics have children (operation
# names are capped by operation_label, the other labels are small sets).
http_requests = functools.cache(HTTP_REQUESTS.labels)
operation_seconds = functools.cache(OPERATION_SECONDS.labels)

_names: set[str] = set()


def operation_label(name: str | None) -> str:
    """The metric label of a client-chosen operation name, with bounded cardinality."""
    if not name:
        return "anonymous"
    if not _NAME.fullmatch(name):
        return "other"
    if name not in _names:
        if len(_names) >= MAX_OPERATION_NAMES:
            return "other"
        _names.add(name)
    return name


def describe_operation(document: DocumentNode, operation_name: str | None) -> tuple[str, str]:
    """(type, name) of the operation a request runs: what spans and lines are named by."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return "unknown", operation_name or "anonymous"
    kind = operation.operation.value if isinstance(operation.operation, OperationType) else "query"
    name = operation.name.value if operation.name is not None else "anonymous"
    return kind, name


def note_operation(scope: Scope, kind: str, name: str) -> None:
    """Names the current span after the operation (OTel GraphQL conventions) and
    records it for the request's access line. Never the document or variables."""
    span = trace.get_current_span()
    if span.is_recording():
        span.update_name(f"{kind} {name}" if name != "anonymous" else kind)
        span.set_attribute("graphql.operation.type", kind)
        if name != "anonymous":
            span.set_attribute("graphql.operation.name", name)
    scope.setdefault(OPERATIONS_KEY, []).append((kind, name))


class AccessLog:
    """ASGI middleware: the access line and request counts of every HTTP request and,
    with `traced`, its server span (W3C `traceparent` of the caller as its parent).

    The span is this middleware's own rather than FastAPI's native OpenTelemetry
    or OpenTelemetry's ASGI instrumentation: those cost 35-40% of the gateway's
    `{ __typename }` throughput even when nothing is sampled (bench.tracing), this
    one a few microseconds, for the same span name, kind and HTTP attributes."""

    def __init__(self, app: ASGIApp, traced: bool = False) -> None:
        self.app = app
        self.traced = traced

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _SKIPPED_PATHS:
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        span = _server_span(scope) if self.traced else None
        # The span made current by a plain attach rather than `trace.use_span`: most
        # requests are not sampled, and for them the span is only a context to carry
        # the decision to what the request calls (a third of the unsampled cost).
        attached = context.attach(trace.set_span_in_context(span)) if span is not None else None
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as error:  # as trace.use_span records it
                if span is not None and span.is_recording():
                    span.record_exception(error)
                    span.set_status(trace.StatusCode.ERROR, f"{type(error).__name__}: {error}")
                raise
            finally:
                if span is not None:
                    if span.is_recording():
                        span.set_attribute("http.response.status_code", status)
                        if status >= 500:
                            span.set_status(trace.StatusCode.ERROR)
                        span.end()
                    context.detach(attached)  # type: ignore[arg-type]
                duration_ms = round((time.perf_counter() - started) * 1000, 2)
                http_requests(scope["method"], f"{status // 100}xx").inc()
                operations = scope.get(OPERATIONS_KEY)
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    operation=",".join(name for _, name in operations) if operations else None,
                    status=status,
                    duration_ms=duration_ms,
                )


class WebSocketOperations:
    """graphql-transport-ws: an access line when each operation ends.

    The start is stamped when the operation's context is built (`started`, called by
    the gateway's context function), not through Ariadne's `on_operation` hook: for a
    query or mutation, Ariadne's handler keeps the hook's return value in the variable
    its one-result generator yields, so any `on_operation` turns the answer into None
    (ariadne 1.1, graphql_transport_ws.py; pinned by
    tests/gateway/test_live_authorisation.py). Ariadne passes the context function no
    operation id, so starts are matched to ends by operation name, first in first out.
    """

    _KEY = "haunted.ws_operation_starts"

    def started(self, websocket: Any, data: Any) -> None:
        name = data.get("operationName") if isinstance(data, dict) else None
        starts = websocket.scope.setdefault(self._KEY, {})
        starts.setdefault(name, deque()).append(time.perf_counter())

    def completed(self, websocket: Any, operation: Any) -> None:
        pending = websocket.scope.get(self._KEY, {}).get(operation.name)
        started = pending.popleft() if pending else None
        duration = time.perf_counter() - started if started is not None else 0.0
        operation_seconds("subscription", operation_label(operation.name), "ok").observe(duration)
        log.info(
            "websocket operation",
            method="WS",
            path=websocket.scope["path"],
            operation=operation.name or "anonymous",
            status="complete",
            duration_ms=round(duration * 1000, 2),
        )


WEBSOCKET_OPERATIONS = WebSocketOperations()


def _server_span(scope: Scope) -> trace.Span:
    """`POST /graphql` (SERVER), child of the caller's `traceparent` if it sent one."""
    carrier = {}
    for name, value in scope.get("headers", ()):
        if name in (b"traceparent", b"tracestate"):
            carrier[name.decode()] = value.decode("latin-1")
    method, path = scope["method"], scope["path"]
    span = HTTP_TRACER.start_span(
        f"{method} {path}",
        context=_PROPAGATOR.extract(carrier) if carrier else None,
        kind=trace.SpanKind.SERVER,
    )
    if span.is_recording():  # attributes only for a span that keeps them (the sampler
        # is the trace id ratio, parent-based: it reads none of them)
        span.set_attributes(
            {
                "http.request.method": method,
                "url.path": path,
                "url.scheme": scope.get("scheme", "http"),
                "http.route": path,
                "network.protocol.version": scope.get("http_version", "1.1"),
            }
        )
    return span


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return new_request_id()


for _method in ("GET", "POST"):
    for _status in ("2xx", "4xx", "5xx"):
        HTTP_REQUESTS.labels(_method, _status)

__all__ = [
    "NO_FASTAPI_TELEMETRY",
    "WEBSOCKET_OPERATIONS",
    "AccessLog",
    "describe_operation",
    "note_operation",
    "operation_label",
]
