"""Structured logs: JSON lines in production, readable in a terminal; secrets never printed."""

from __future__ import annotations

import functools
import json as stdlib_json
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import orjson
import structlog
from opentelemetry import trace

REDACTED = "[redacted]"
_SECRET_KEY = re.compile(
    r"pass(word)?|token|secret|authorization|api[_-]?key|cookie|jwt", re.IGNORECASE
)
_BEARER = re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+")


@functools.lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    # Keys are a small, fixed set (the code's own field names): the regex runs once per key.
    return _SECRET_KEY.search(key) is not None


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        # Most values hold no "bearer" at all: a substring test spares them the regex.
        return _BEARER.sub("Bearer " + REDACTED, value) if "earer" in value.lower() else value
    if isinstance(value, int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {k: REDACTED if _secret_key(str(k)) else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Drops the values of password, token and Authorization-like keys, at any depth."""
    for key, value in list(event_dict.items()):
        event_dict[key] = REDACTED if _secret_key(key) else _scrub(value)
    return event_dict


def add_trace_ids(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """`trace_id` and `span_id` of the current span, when there is one, as the
    hex strings trace backends show: a log line leads to its trace and back."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


def _dumps(obj: Any, **kwargs: Any) -> str:
    """orjson for the JSON lines (a fraction of the json module's time); the json module
    for what orjson refuses (integers past 64 bits), with the renderer's fallback."""
    try:
        return orjson.dumps(
            obj, default=kwargs.get("default"), option=orjson.OPT_NON_STR_KEYS
        ).decode()
    except TypeError:
        return stdlib_json.dumps(obj, **kwargs)


class _NamedWriteLogger(structlog.WriteLogger):
    """structlog's line writer (one write and a flush a line), with the name the code
    gave `structlog.get_logger(name)`: `add_logger_name` reads it."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class _WriteLoggerFactory:
    def __init__(self, file: TextIO) -> None:
        self.file = file

    def __call__(self, *args: Any) -> _NamedWriteLogger:
        return _NamedWriteLogger(self.file, str(args[0]) if args else "haunted")


def configure_logging(
    level: str = "INFO", *, json: bool = True, cache: bool = True, stream: TextIO | None = None
) -> None:
    """`cache=False` keeps loggers reconfigurable (tests capture and reset them).
    `stream`: where the lines go (standard error by default).

    Our own lines (structlog) take structlog's fast path: a level-filtering bound
    logger whose processors render the line and write it straight to the stream,
    not through the standard library's logging (records, handlers, formatter: more
    than half of an access line's cost). Libraries' standard-library lines go
    through a handler on the same stream with the same processors and renderer, so
    both kinds of line have the same fields, redaction and format."""
    stream = stream if stream is not None else sys.stderr
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if json
        else structlog.dev.ConsoleRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_ids,
        redact_secrets,
    ]
    numeric = level if isinstance(level, int) else logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_WriteLoggerFactory(stream),
        cache_logger_on_first_use=cache,
    )
    # Libraries' standard-library logs share the renderer.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("haunted.graphql.ariadne").setLevel(logging.CRITICAL)
    for noisy in ("aiokafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
