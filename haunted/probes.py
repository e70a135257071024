"""What every process shows its operators: /metrics, /healthz, /readyz, and build info.

The gateway serves these on its own port (gateway/app.py); `haunted worker`
has no HTTP port of its own, so it serves them on `HAUNTED_WORKER_PORT`
(`probe_app`). Metrics follow Prometheus conventions: no `_created` series,
and counters whose label values are known are exported at 0 from the start,
so `increase()` sees the first event.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import platform
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, disable_created_metrics, generate_latest

from events.metrics import EVENTS_HANDLED
from gateway.access import NO_FASTAPI_TELEMETRY
from haunted.telemetry import haunted_version

log = structlog.get_logger(__name__)

# Process-wide and before any series exists: `_created` doubles every counter's series.
disable_created_metrics()

BUILD_INFO = Gauge(
    "haunted_build_info",
    "1, labelled with the running version, Python and process role",
    ["version", "python", "role"],
)
OUTCOMES = ("handled", "duplicate", "dead_lettered")
DEPENDENCY_UP = Gauge(
    "haunted_dependency_up",
    "1 when the dependency answered this process's last check (every 10 s)",
    ["dependency"],
)


def record_build_info(role: str) -> None:
    BUILD_INFO.labels(haunted_version(), platform.python_version(), role).set(1)


def zero_handled(consumers: Mapping[str, Iterable[str]]) -> None:
    """`haunted_events_handled_total` at 0 for every (consumer, topic, outcome) this
    process can count, and for the dead letters of undecodable records."""
    for consumer, topics in consumers.items():
        for topic in [*topics, "malformed"]:
            for outcome in OUTCOMES:
                EVENTS_HANDLED.labels(consumer, topic, outcome)


async def sample_dependencies(
    checks: Mapping[str, Callable[[], Any]], stopping: asyncio.Event, interval_s: float = 10.0
) -> None:
    """`haunted_dependency_up{dependency}` for each check (database, cache, broker),
    so an alert sees a dependency that is gone before requests fail on it."""
    names = list(checks)
    while not stopping.is_set():
        results = await asyncio.gather(
            *(asyncio.wait_for(checks[name](), 2.0) for name in names), return_exceptions=True
        )
        for name, result in zip(names, results, strict=True):
            DEPENDENCY_UP.labels(name).set(0 if isinstance(result, BaseException) else 1)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval_s)


def probe_app(
    readiness: Mapping[str, Callable[[], Any]],
    *,
    metrics_token: str | None = None,
    metrics_open: bool = True,
) -> FastAPI:
    """/metrics, /healthz and /readyz for a process that serves nothing else. /metrics
    is guarded as the gateway's (HAUNTED_METRICS_TOKEN as a bearer; without one, open
    only outside production)."""
    app = FastAPI(
        title="Haunted worker",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        telemetry=NO_FASTAPI_TELEMETRY,  # probes are not traced
    )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        names = list(readiness)
        results = await asyncio.gather(
            *(asyncio.wait_for(readiness[name](), 2.0) for name in names), return_exceptions=True
        )
        down = sorted(
            name
            for name, result in zip(names, results, strict=True)
            if isinstance(result, BaseException)
        )
        if down:
            log.warning("not ready", down=down)
            return JSONResponse({"status": "unavailable", "down": down}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics")
    async def metrics(request: Request) -> Response:
        if metrics_token is not None:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), metrics_token.encode()
            ):
                return Response("metrics need the bearer token\n", status_code=401)
        elif not metrics_open:
            return Response("metrics are off: set HAUNTED_METRICS_TOKEN\n", status_code=403)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


__all__ = [
    "BUILD_INFO",
    "DEPENDENCY_UP",
    "probe_app",
    "record_build_info",
    "sample_dependencies",
    "zero_handled",
]
