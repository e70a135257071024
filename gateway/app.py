"""One ASGI app on one port: GraphQL, Socket.IO, health, metrics and keys.

The GraphQL HTTP path is Ariadne's handler with the gateway's pipeline: the
body read with a cap, persisted queries resolved, the document parsed and
validated through the document cache, the limits checked before any resolver
runs, and each operation run under a timeout. Its HTTP semantics follow the
GraphQL-over-HTTP spec (docs/graphql-http.md): `application/json` answers are
200 for every well-formed request, `application/graphql-response+json` ones
carry the spec's status codes, GET runs queries only.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from inspect import isawaitable
from typing import Any, cast

import orjson
import socketio
import structlog
from ariadne.asgi import GraphQL
from ariadne.asgi.handlers import GraphQLHTTPHandler, GraphQLTransportWSHandler
from ariadne.asgi.handlers.base import GraphQLWebsocketHandlerBase
from ariadne.graphql import graphql as run_graphql
from ariadne.graphql import (
    handle_graphql_errors,
    handle_query_result,
    validate_data,
    validate_operation_is_not_subscription,
    validate_operation_is_query,
)
from ariadne.types import ContextValue, GraphQLResult, QueryValidator
from ariadne.validation.introspection_disabled import IntrospectionDisabledRule
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
)
from opentelemetry import trace
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from redis.asyncio import Redis
from starlette.middleware.cors import CORSMiddleware
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway import explorer
from gateway.access import (
    NO_FASTAPI_TELEMETRY,
    OPERATIONS_KEY,
    WEBSOCKET_OPERATIONS,
    AccessLog,
    describe_operation,
    note_operation,
    operation_label,
    operation_seconds,
)
from gateway.dev_mail import CaughtMailSource, add_dev_mail_route
from gateway.documents import DocumentCache
from gateway.errors import format_error, internal_error, request_error
from gateway.exports import export_router
from gateway.graphql import Services, build_schema
from gateway.limits import LimitExceeded, QueryLimits
from gateway.persisted import PersistedQueries, PersistedQueryError
from gateway.push import PushHub
from gateway.webhooks import stripe_webhook_router
from services.errors import DomainError, Unauthenticated
from services.principal import Principal

log = structlog.get_logger(__name__)
TRACER = trace.get_tracer("haunted.gateway")

ReadinessCheck = Callable[[], Awaitable[object]]

REQUEST_SECONDS = Histogram(
    "haunted_graphql_request_seconds", "GraphQL HTTP requests, from body read to response"
)
OPERATIONS = Counter(
    "haunted_graphql_operations_total", "GraphQL operations over HTTP", ["outcome"]
)
_OK = OPERATIONS.labels("ok")
_ERRORS = OPERATIONS.labels("errors")
_TIMEOUT = OPERATIONS.labels("timeout")

BROKER_UP = Gauge(
    "haunted_broker_up",
    "1 when the broker answered this process's last check (at each /healthz and /metrics)",
)

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"


@dataclass(frozen=True, slots=True)
class GraphQLConfig:
    """The GraphQL knobs of the gateway (settings HAUNTED_GRAPHQL_*); defaults are sane."""

    max_body_bytes: int = 1_000_000
    max_tokens: int = 5_000
    max_depth: int = 15
    max_aliases: int = 30
    max_cost: int = 10_000
    default_list_size: int = 10
    max_batch: int = 10
    timeout_s: float = 10.0
    introspection: bool = True
    suggestions: bool = True
    document_cache_entries: int = 1_000
    document_cache_max_document_chars: int = 10_000
    document_cache_max_total_chars: int = 1_000_000
    persisted_queries: bool = True
    persisted_query_ttl_s: int = 7 * 24 * 3600
    # sha256 -> document: when set, only these documents run.
    allowlist: Mapping[str, str] | None = None
    # GraphiQL on GET /graphql for a browser (Accept: text/html): dev only.
    explorer: bool = False


class _Refused(Exception):
    """A request refused before any operation runs: its status and GraphQL error."""

    def __init__(
        self, status: int, error: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(error["message"])
        self.status = status
        self.error = error
        self.headers = headers


def _quality(accept: str, media_types: tuple[str, ...]) -> float:
    """The highest q the Accept header gives any of `media_types` (0 when none)."""
    best = 0.0
    for entry in accept.split(","):
        media, *params = (part.strip() for part in entry.split(";"))
        if media.lower() not in media_types:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best = max(best, q)
    return best


def response_media_type(accept: str | None) -> str:
    """`application/graphql-response+json` when the client prefers it (or likes it as
    much as JSON), else `application/json`, which is also the answer to no Accept."""
    if not accept:
        return JSON
    graphql_response = _quality(accept, (GRAPHQL_RESPONSE,))
    if graphql_response > 0 and graphql_response >= _quality(
        accept, (JSON, "application/*", "*/*")
    ):
        return GRAPHQL_RESPONSE
    return JSON


def _accepts_html(request: Request) -> bool:
    return _quality(request.headers.get("accept", ""), ("text/html",)) > 0


class _GraphQLJSONResponse(JSONResponse):
    """Starlette's JSONResponse rendered by orjson: the same compact UTF-8 JSON in a
    fraction of the json module's time (every GraphQL answer pays it). What orjson
    refuses (an integer past 64 bits from a custom scalar) falls back to Starlette's
    own rendering, so no answer renders differently than it would there."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:
            return super().render(content)


def _json(
    content: Any,
    status: int = 200,
    media_type: str = JSON,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return _GraphQLJSONResponse(content, status_code=status, media_type=media_type, headers=headers)


class GatewayHTTPHandler(GraphQLHTTPHandler):
    """Ariadne's HTTP handler with the gateway's limits, persisted queries and batching.

    A JSON array of operations is a batch (at most `max_batch`): they run one
    after the other with one context (one authentication) and the answer is
    the array of their results. GET runs queries only (a mutation gets 405),
    from the `query`, `variables`, `operationName` and `extensions` parameters.
    POST takes `application/json` only (anything else, multipart uploads
    included, gets 415).

    Status codes (the GraphQL-over-HTTP spec): an `application/json` answer is
    200 for every well-formed request, errors included; an
    `application/graphql-response+json` one is 200 once execution started
    (`data` present) and 400 for a request error (syntax, validation, a limit,
    a persisted query). Either way a malformed request (not JSON, no query) is
    400, a body over the cap 413 and an operation over its time 504.
    """

    def __init__(
        self, config: GraphQLConfig, limits: QueryLimits, persisted: PersistedQueries
    ) -> None:
        super().__init__()
        self.config = config
        self.limits = limits
        self.persisted = persisted
        self.hide_suggestions = not config.suggestions
        self._static_rules: tuple[type[ASTValidationRule], ...] | None = None

    async def handle_request(self, request: Request) -> Response:
        method = request.method
        if method == "POST":
            return await self.graphql_http_server(request)
        if method == "GET":
            params = request.query_params
            if "query" in params or "extensions" in params or not _accepts_html(request):
                return await self.graphql_http_server(request)
            return self._explorer(request)
        return self.handle_not_allowed_method(request)

    def _explorer(self, request: Request) -> Response:
        if not (self.config.explorer and self.introspection):
            return PlainTextResponse(
                "No GraphQL explorer here: it is served in dev only, with introspection on. "
                "Send GraphQL with POST /graphql (application/json), or queries with "
                "GET /graphql?query=...",
                status_code=404,
            )
        if not explorer.assets_installed():
            return PlainTextResponse(explorer.NOT_INSTALLED, status_code=503)
        return HTMLResponse(explorer.explorer_page(request.url.path))

    async def graphql_http_server(self, request: Request) -> Response:
        started = time.perf_counter()
        media_type = response_media_type(request.headers.get("accept"))
        try:
            response = await self._serve(request, media_type)
        except _Refused as refused:
            response = _json(
                {"errors": [refused.error]}, refused.status, media_type, refused.headers
            )
        except Exception as error:  # never a stack trace: a request id to find it in the log
            response = _json(
                {"errors": [internal_error(error, "unexpected error serving GraphQL")]},
                500,
                media_type,
            )
        REQUEST_SECONDS.observe(time.perf_counter() - started)
        return response

    async def _serve(self, request: Request, media_type: str) -> Response:
        data = await self._request_data(request)
        context = await self.get_context_for_request(request, data)
        require_query = request.method == "GET"
        strict = media_type == GRAPHQL_RESPONSE
        if isinstance(data, list):
            if not data:
                raise _Refused(400, request_error("a batch needs at least one operation"))
            if len(data) > self.config.max_batch:
                refusal = LimitExceeded(
                    "batch",
                    f"batch limit exceeded: the request has {len(data)} operations, "
                    f"over the limit of {self.config.max_batch}",
                    self.config.max_batch,
                    len(data),
                )
                raise _Refused(400, format_error(refusal))
            results = []
            for operation in data:
                try:
                    _, result = await self.run_operation(request, operation, context, require_query)
                except _Refused as refused:  # one malformed operation, not the batch
                    result = {"errors": [refused.error]}
                results.append(result)
            return _json(results, media_type=media_type)
        status, result = await self.run_operation(
            request, data, context, require_query, strict=strict
        )
        return _json(result, status, media_type)

    async def _request_data(self, request: Request) -> Any:
        if request.method == "GET":
            return self._data_from_query_string(request)
        self._refuse_unsupported_media_type(request)  # before reading a byte of the body
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise _Refused(413, request_error(f"request body exceeds {limit} bytes"))
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():  # capped as it arrives, declared length or not
            size += len(chunk)
            if size > limit:
                raise _Refused(413, request_error(f"request body exceeds {limit} bytes"))
            chunks.append(chunk)
        body = b"".join(chunks)
        try:
            # orjson: the same documents as the json module (it refuses NaN and Infinity,
            # which JSON does not have), in a fraction of the time.
            return orjson.loads(body)
        except (ValueError, RecursionError):
            raise _Refused(400, request_error("request body is not valid JSON")) from None

    @staticmethod
    def _refuse_unsupported_media_type(request: Request) -> None:
        content_type = request.headers.get("content-type", "")
        media = content_type.partition(";")[0].strip().lower()
        if media == JSON:
            return
        if media == "multipart/form-data":
            message = (
                "multipart/form-data is not supported: this API takes no file uploads; "
                "send the operation as application/json"
            )
        elif media:
            message = f"unsupported content type {media!r}: POST /graphql takes application/json"
        else:
            message = "a POST to /graphql needs Content-Type: application/json"
        raise _Refused(415, request_error(message), {"Accept-Post": JSON})

    def _data_from_query_string(self, request: Request) -> dict[str, Any]:
        params = request.query_params
        data: dict[str, Any] = {
            "query": params.get("query") or None,
            "operationName": params.get("operationName") or None,
        }
        for name in ("variables", "extensions"):
            raw = params.get(name)
            if raw:
                try:
                    data[name] = json.loads(raw)
                except (ValueError, RecursionError):
                    raise _Refused(
                        400, request_error(f"the {name} parameter is not valid JSON")
                    ) from None
        return data

    async def run_operation(
        self,
        request: Any,
        data: Any,
        context: Any,
        require_query: bool = False,
        *,
        strict: bool = False,
    ) -> tuple[int, dict[str, Any]]:
        """One operation, as (HTTP status, GraphQL response). `strict`: the status
        codes of `application/graphql-response+json` (400 for a request error).
        It runs in a span named after it once it is known (before_execution):
        no document text, no variables."""
        started = time.perf_counter()
        # Under an unsampled request the span would not record either (parent-based
        # sampling): then none is made, which is most requests at a low ratio.
        traced = trace.get_current_span().is_recording()
        with TRACER.start_as_current_span("GraphQL Operation") if traced else nullcontext() as span:
            status, result = await self._run_operation(
                request, data, context, require_query, strict=strict
            )
            outcome = "ok" if "errors" not in result else "errors"
            if span is not None:
                span.set_attribute("haunted.outcome", outcome)
        operations = request.scope.get(OPERATIONS_KEY) if hasattr(request, "scope") else None
        kind, name = operations[-1] if operations else ("unknown", None)
        operation_seconds(kind, operation_label(name), outcome).observe(
            time.perf_counter() - started
        )
        return status, result

    async def _run_operation(
        self, request: Any, data: Any, context: Any, require_query: bool, *, strict: bool
    ) -> tuple[int, dict[str, Any]]:
        register: str | None = None
        request_error_status = HTTPStatus.BAD_REQUEST if strict else HTTPStatus.OK
        if isinstance(data, dict) and self.persisted.applies_to(data):
            try:
                data, register = await self.persisted.resolve(data)
            except PersistedQueryError as error:
                _ERRORS.inc()
                # A request error: Apollo clients read PersistedQueryNotFound from the
                # body, whether the status is 200 (application/json) or 400.
                return request_error_status, {"errors": [self.error_formatter(error, self.debug)]}
        try:
            validate_data(data)
        except GraphQLError as error:  # not a GraphQL request at all: 400 in either media type
            raise _Refused(400, request_error(error.message)) from None
        if require_query:
            self._refuse_non_query_over_get(context, data)
        root_value = (
            self.before_execution
            if register is None
            else partial(self._before_execution_registering, register, data["query"])
        )
        try:
            async with asyncio.timeout(self.config.timeout_s):
                success, result = await self._execute(
                    request, data, context, root_value, require_query
                )
        except TimeoutError:
            _TIMEOUT.inc()
            timeout = request_error(
                f"the operation did not finish within its {self.config.timeout_s:g} s limit",
                "INTERNAL",
                limit="timeout",
                max=self.config.timeout_s,
            )
            return 504, {"data": None, "errors": [timeout]}
        (_OK if success and "errors" not in result else _ERRORS).inc()
        if result.get("data", False) is None and not any(
            "path" in error for error in result.get("errors", ())
        ):
            # Null data and no field error: graphql-core refused before running anything
            # (no operation to run, variables that do not coerce), a request error,
            # which per the GraphQL spec has no `data` entry.
            del result["data"]
        # Execution started exactly when the result has `data` (null included).
        return (HTTPStatus.OK if "data" in result else request_error_status), result

    def _refuse_non_query_over_get(self, context: Any, data: dict[str, Any]) -> None:
        """The spec's 405 for a mutation (or subscription) sent with GET. A document
        that does not parse or names no operation is left to the usual errors."""
        try:
            document = (
                self.query_parser(context, data) if self.query_parser else parse(data["query"])
            )
        except GraphQLError:
            return
        operation = get_operation_ast(document, data.get("operationName"))
        if operation is None or operation.operation is OperationType.QUERY:
            return
        kind = operation.operation.value
        name = f" {operation.name.value!r}" if operation.name else ""
        raise _Refused(
            405,
            request_error(
                f"GET runs queries only: send the {kind}{name} with POST "
                "(Content-Type: application/json)"
            ),
            {"Allow": "POST"},
        )

    async def execute_graphql_query(
        self,
        request: Any,
        data: Any,
        *,
        context_value: Any = None,
        query_document: DocumentNode | None = None,
    ) -> GraphQLResult:
        if context_value is None:
            context_value = await self.get_context_for_request(request, data)
        return await self._execute(request, data, context_value, self.before_execution, False)

    async def _execute(
        self,
        request: Any,
        data: Any,
        context: ContextValue,
        root_value: Callable[..., Any],
        require_query: bool,
    ) -> GraphQLResult:
        if self.schema is None:
            raise TypeError("schema is not set, call configure method to initialize it")
        if self.extensions or self.middleware or self.execution_context_class:
            return await run_graphql(
                self.schema,
                data,
                context_value=context,
                root_value=root_value,
                query_parser=self.query_parser,
                query_validator=self.query_validator,
                validation_rules=self.validation_rules,
                require_query=require_query,
                debug=self.debug,
                introspection=self.introspection,
                logger=self.logger,
                error_formatter=self.error_formatter,
                extensions=await self.get_extensions_for_request(request, context),
                middleware=await self.get_middleware_for_request(request, context),
                middleware_manager_class=self.middleware_manager_class,
                execution_context_class=self.execution_context_class,
                hide_suggestions=self.hide_suggestions,
            )
        return await self._execute_lean(self.schema, data, context, root_value, require_query)

    async def _execute_lean(
        self,
        schema: GraphQLSchema,
        data: Any,
        context: ContextValue,
        root_value: Callable[..., Any],
        require_query: bool,
    ) -> GraphQLResult:
        """A thin shim of Ariadne's `graphql()` for when no extensions or middleware are
        configured: the same hooks, rules, checks and error formatting, less per-request
        set-up (69 µs against 93 µs a `{ __typename }` in-process, load 9: about 6% of a
        request's cost at the gateway's rate). It calls only Ariadne's and graphql-core's
        public functions; tests/gateway/test_lean_execution.py pins it to `ariadne.graphql`
        (same data, errors and extensions for a set of documents and options)."""
        try:
            validate_data(data)
            variables, operation_name = data.get("variables"), data.get("operationName")
            document = (
                self.query_parser(context, data) if self.query_parser else parse(data["query"])
            )
            errors = self._validator(schema, document, self._rules(context, document, data), None)
            if errors:
                return handle_graphql_errors(
                    errors,
                    logger=self.logger,
                    error_formatter=self.error_formatter,
                    debug=self.debug,
                )
            if require_query:
                validate_operation_is_query(document, operation_name)
            else:
                validate_operation_is_not_subscription(document, operation_name)
            ready = root_value(context, operation_name, variables, document)
            if ready is not None:
                await ready
            result = execute(
                schema,
                document,
                None,
                context,
                variables,
                operation_name,
                hide_suggestions=self.hide_suggestions,
            )
            if isawaitable(result):
                result = await result
        except GraphQLError as error:
            return handle_graphql_errors(
                [error], logger=self.logger, error_formatter=self.error_formatter, debug=self.debug
            )
        return handle_query_result(
            result, logger=self.logger, error_formatter=self.error_formatter, debug=self.debug
        )

    def _rules(
        self, context: Any, document: DocumentNode, data: dict[str, Any]
    ) -> tuple[type[ASTValidationRule], ...]:
        rules = self.validation_rules
        if callable(rules):
            rules = rules(context, document, data)
        elif self._static_rules is not None:
            return self._static_rules
        extra = (*(rules or ()), *(() if self.introspection else (IntrospectionDisabledRule,)))
        combined = (*specified_rules, *extra) if extra else specified_rules
        if not callable(self.validation_rules):
            self._static_rules = combined
        return combined

    @property
    def _validator(self) -> QueryValidator:
        return self.query_validator or cast(QueryValidator, validate)

    def before_execution(
        self, context: Any, operation_name: str | None, variables: Any, document: DocumentNode
    ) -> None:
        """Ariadne's root_value hook: after validation, before any resolver."""
        self.limits.check(document, operation_name, variables)
        request = context.get("request") if isinstance(context, dict) else None
        if request is not None and request.scope["type"] == "http":
            note_operation(request.scope, *describe_operation(document, operation_name))

    async def _before_execution_registering(
        self,
        sha: str,
        query: str,
        context: Any,
        operation_name: str | None,
        variables: Any,
        document: DocumentNode,
    ) -> None:
        # Registered only once valid and within the limits: garbage is not stored.
        self.before_execution(context, operation_name, variables, document)
        await self.persisted.register(sha, query)


def graphql_app(
    schema: GraphQLSchema,
    config: GraphQLConfig | None = None,
    *,
    redis: Redis | None = None,
    context_value: ContextValue | None = None,
    websocket_handler: GraphQLWebsocketHandlerBase | None = None,
    debug: bool = False,
) -> GraphQL:
    """Ariadne's ASGI GraphQL app over `schema`, with the gateway's cache, limits and APQ."""
    config = config or GraphQLConfig()
    documents = DocumentCache(
        max_entries=config.document_cache_entries,
        max_document_chars=config.document_cache_max_document_chars,
        max_total_chars=config.document_cache_max_total_chars,
        max_tokens=config.max_tokens,
        hide_suggestions=not config.suggestions,
    )
    limits = QueryLimits(
        schema,
        max_depth=config.max_depth,
        max_aliases=config.max_aliases,
        max_cost=config.max_cost,
        default_list_size=config.default_list_size,
        cache=documents,
    )
    persisted = PersistedQueries(
        redis,
        enabled=config.persisted_queries,
        ttl_s=config.persisted_query_ttl_s,
        allowlist=config.allowlist,
        local_entries=config.document_cache_entries,
        max_local_chars=config.document_cache_max_document_chars,
    )
    handler = GatewayHTTPHandler(config, limits, persisted)
    return GraphQL(
        schema,
        context_value=context_value,
        # Over WebSocket (no APQ there), the limits run from this hook too.
        root_value=handler.before_execution,
        query_parser=documents.query_parser,
        query_validator=documents.validate,
        introspection=config.introspection,
        error_formatter=format_error,
        debug=debug,
        # Expected errors are answered, unexpected ones logged by format_error: no double log.
        logger="haunted.graphql.ariadne",
        http_handler=handler,
        websocket_handler=websocket_handler or GraphQLTransportWSHandler(),
    )


def _frozen_once_started(
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Once started, what the process has built (schema, services, libraries: some
    300,000 objects) is moved out of the garbage collector's sight: a full collection
    otherwise rescans all of it, a pause of tens to hundreds of milliseconds every few
    thousand requests. Unfrozen at shutdown, so that it can be freed."""

    @asynccontextmanager
    async def frozen(app: FastAPI) -> AsyncIterator[None]:
        async with lifespan(app) if lifespan is not None else nullcontext():
            gc.freeze()
            try:
                yield
            finally:
                gc.unfreeze()

    return frozen


class GraphQLCORS:
    """Starlette's CORS middleware on the GraphQL path only, with credentials: the
    browser origins of the allowlist (HAUNTED_CORS_ORIGINS) may call /graphql; any
    other origin gets no Access-Control-Allow-Origin, so its browser refuses."""

    def __init__(self, app: Any, origins: Sequence[str], path: str = "/graphql") -> None:
        self.app = app
        self.path = path
        self.cors = CORSMiddleware(
            app,
            allow_origins=list(origins),
            allow_credentials=True,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],  # answered with the headers the preflight asks for
            max_age=600,
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (
            scope["path"] == self.path or scope["path"].startswith(self.path + "/")
        ):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def _answers(check: ReadinessCheck) -> bool:
    try:
        await asyncio.wait_for(check(), 2.0)
    except Exception:  # any failure means it does not answer
        return False
    return True


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def create_app(
    services: Services,
    hub: PushHub,
    sio: socketio.AsyncServer,
    *,
    readiness: Mapping[str, ReadinessCheck],
    broker: ReadinessCheck | None = None,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
    graphql: GraphQLConfig | None = None,
    redis: Redis | None = None,
    cors_origins: Sequence[str] = (),
    debug: bool = False,
    metrics_token: str | None = None,
    metrics_open: bool = True,
    dev_mail: CaughtMailSource | None = None,
    tracer_provider: Any = None,
) -> socketio.ASGIApp:
    """The gateway's ASGI app. `readiness`: what a request needs (/readyz is 503
    without it); `broker`: reported in /healthz and `haunted_broker_up`, never in
    /readyz (the outbox absorbs a broker outage).
    `metrics_token` set: /metrics needs it as a bearer. Unset: /metrics is served only
    when `metrics_open` (dev and tests), else refused (a production default).
    With `tracer_provider`, every HTTP request is a server span (gateway/access.py)."""
    app = FastAPI(
        title="Haunted",
        lifespan=_frozen_once_started(lifespan),
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # FastAPI's own OpenTelemetry turns on by itself once a tracer provider is
        # installed, and costs ~40% of `{ __typename }` throughput even unsampled
        # (bench.tracing): the server span is AccessLog's (gateway/access.py).
        telemetry=NO_FASTAPI_TELEMETRY,
    )

    async def context_for(request: Request | WebSocket, _data: Any = None) -> dict[str, Any]:
        if isinstance(request, WebSocket):  # once per operation on the socket
            WEBSOCKET_OPERATIONS.started(request, _data)
            return {"request": request, "principal": await _current_principal(request)}
        context: dict[str, Any] = {"request": request, "principal": None, "auth_error": None}
        header = request.headers.get("authorization")
        if header:
            token = _bearer(header)
            try:
                if token is None:
                    raise Unauthenticated("Authorization must be 'Bearer <token>'")
                context["principal"] = await services.auth.authenticate(token)
            except Unauthenticated as error:
                context["auth_error"] = error
        return context

    async def _current_principal(websocket: WebSocket) -> Principal | None:
        """Each operation on a GraphQL WebSocket runs as its caller stands now: the
        session (or key) still alive, with its current roles (one Redis round trip, as
        over HTTP). An ended one closes the socket with 4403 before anything runs."""
        principal: Principal | None = websocket.scope.get("haunted.principal")
        if principal is None:
            return None
        try:
            return await services.auth.reauthorize(principal)
        except Unauthenticated:
            with contextlib.suppress(Exception):
                await websocket.close(code=4403, reason="Forbidden")
            raise WebSocketDisconnect(4403) from None

    async def on_ws_connect(websocket: WebSocket, payload: Any) -> None:
        token = _bearer(payload.get("authorization")) if isinstance(payload, dict) else None
        try:
            if token is None:
                raise Unauthenticated("connection_init must carry authorization")
            principal = await services.auth.authenticate(token)
        except DomainError:
            await websocket.close(code=4403, reason="Forbidden")
            raise
        websocket.scope["haunted.principal"] = principal

        async def close() -> None:
            await websocket.close(code=4403, reason="session ended")

        websocket.scope["haunted.untrack"] = hub.track_websocket(principal, close)

    async def on_ws_disconnect(websocket: WebSocket) -> None:
        untrack = websocket.scope.pop("haunted.untrack", None)
        if untrack is not None:
            untrack()

    server = graphql_app(
        build_schema(services, hub),
        graphql,
        redis=redis,
        context_value=context_for,
        websocket_handler=GraphQLTransportWSHandler(
            on_connect=on_ws_connect,
            on_disconnect=on_ws_disconnect,
            on_complete=WEBSOCKET_OPERATIONS.completed,
        ),
        debug=debug,
    )
    app.add_route("/graphql", server.handle_request, methods=["GET", "POST", "OPTIONS"])
    app.add_route(f"/graphql{explorer.ASSETS_PATH}/{{name}}", explorer.serve_asset, methods=["GET"])
    app.add_middleware(GraphQLCORS, origins=cors_origins)
    app.include_router(stripe_webhook_router(services.billing))
    app.include_router(export_router(services.exports, services.auth.authenticate))
    app.router.add_websocket_route("/graphql", server.handle_websocket)  # type: ignore[arg-type]

    async def broker_up() -> bool | None:
        if broker is None:
            return None
        up = await _answers(broker)
        BROKER_UP.set(1 if up else 0)
        return up

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """200 while the process serves; the broker's state in the details."""
        up = await broker_up()
        details = {} if up is None else {"broker": "up" if up else "down"}
        return {"status": "ok", "details": details}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        names = list(readiness)
        results = await asyncio.gather(
            *(asyncio.wait_for(readiness[name](), 2.0) for name in names), return_exceptions=True
        )
        down = {
            name: repr(result)
            for name, result in zip(names, results, strict=True)
            if isinstance(result, BaseException)
        }
        if down:
            log.warning("not ready", down=sorted(down))
            return JSONResponse({"status": "unavailable", "down": sorted(down)}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        if metrics_token is not None:
            given = _bearer(request.headers.get("authorization")) or ""
            if not hmac.compare_digest(given.encode(), metrics_token.encode()):
                return Response("metrics need the bearer token\n", status_code=401)
        elif not metrics_open:
            return Response("metrics are off: set HAUNTED_METRICS_TOKEN\n", status_code=403)
        await broker_up()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    if dev_mail is not None:  # dev only: elsewhere /dev/mail is a 404 like any unknown path
        add_dev_mail_route(app, dev_mail)

    @app.get("/.well-known/jwks.json")
    async def jwks() -> dict[str, Any]:
        return services.auth.jwks()

    app.add_middleware(AccessLog, traced=tracer_provider is not None)
    return socketio.ASGIApp(sio, other_asgi_app=app, socketio_path="socket.io")
