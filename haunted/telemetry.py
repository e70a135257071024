"""Tracing set-up: the OpenTelemetry SDK, its exporter and the maintained instrumentations
(SQLAlchemy, redis, httpx; the HTTP server span is gateway/access.py's, for its cost).

Off unless `HAUNTED_OTLP_ENDPOINT` is set (or a test hands in an exporter):
then no provider is installed, every span in the code is the API's no-op and
no library is instrumented, so an untraced process pays next to nothing.

The provider is process-wide (OpenTelemetry's global, which the
instrumentations read), so it is installed once; a later call only adds an
exporter.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from sqlalchemy.ext.asyncio import AsyncEngine

from haunted.settings import Settings

_provider: TracerProvider | None = None


def haunted_version() -> str:
    try:
        return version("haunted")
    except PackageNotFoundError:  # running from a checkout that is not installed
        return "0.0.0"


def sample_ratio(settings: Settings) -> float:
    """The share of new traces recorded: the setting, else all in dev and test."""
    if settings.trace_sample_ratio is not None:
        return settings.trace_sample_ratio
    return 0.1 if settings.env == "prod" else 1.0


def traces_url(settings: Settings) -> str | None:
    """`<base>/v1/traces`, as OTEL_EXPORTER_OTLP_ENDPOINT's base URL works."""
    if settings.otlp_endpoint is None:
        return None
    return str(settings.otlp_endpoint).rstrip("/") + "/v1/traces"


def setup_tracing(
    settings: Settings, process: str, *, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """Installs the tracer provider (once per process) and returns it; None: tracing off.

    `exporter` (tests, benchmarks) is added synchronously; the OTLP exporter
    batches in the background. Parent-based sampling: a request that arrives
    with a sampled `traceparent` is recorded whatever the ratio, and an event's
    consumers follow the decision taken where the event was caused.
    """
    global _provider
    url = traces_url(settings)
    if _provider is None:
        if url is None and exporter is None:
            return None
        _provider = TracerProvider(
            resource=Resource.create(
                {
                    "service.name": f"haunted-{process}",
                    "service.namespace": "haunted",
                    "service.version": haunted_version(),
                    "deployment.environment.name": settings.env,
                }
            ),
            sampler=ParentBased(TraceIdRatioBased(sample_ratio(settings))),
        )
        if url is not None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
        trace.set_tracer_provider(_provider)
        RedisInstrumentor().instrument(tracer_provider=_provider)
        HTTPXClientInstrumentor().instrument(tracer_provider=_provider)
    if exporter is not None:
        _provider.add_span_processor(SimpleSpanProcessor(exporter))
    return _provider


def instrument_database(engine: AsyncEngine, provider: TracerProvider) -> None:
    """Spans for the statements of `engine` (the process's one Database).

    SQLAlchemy's instrumentor instruments the engines given to its one
    `instrument()` call; a process that builds a new Database (tests do, one
    per test) re-instruments with that one."""
    instrumentor = SQLAlchemyInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    # Its declared range stops below SQLAlchemy 2.1, whose engine events it uses unchanged.
    instrumentor.instrument(
        engine=engine.sync_engine,
        tracer_provider=provider,
        enable_commenter=False,
        skip_dep_check=True,
    )


__all__ = [
    "haunted_version",
    "instrument_database",
    "sample_ratio",
    "setup_tracing",
    "traces_url",
]
