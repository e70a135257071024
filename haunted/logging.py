"""Structured logs: JSON lines in production, readable in a terminal; secrets never printed."""

from __future__ import annotations

import functools
import json as stdlib_json
import logging
import re
import sys
import threading
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


class _LineWriter:
    """Where structlog's fast path writes a rendered line: one write and a flush, under
    a lock shared with the other loggers (threads log too), with the name the code gave
    `structlog.get_logger(name)` (`add_logger_name` reads it).

    Without a stream of its own it writes to whatever `sys.stderr` is at that moment,
    as the standard library's handlers do in effect. A line that cannot be written
    (a closed or broken stream) is dropped: logging never fails the work it describes,
    as the standard library's `Handler.handleError` also ensures."""

    _lock = threading.Lock()

    def __init__(self, name: str, stream: TextIO | None) -> None:
        self.name = name
        self._stream = stream

    def msg(self, message: str) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        try:
            with self._lock:
                stream.write(message + "\n")
                stream.flush()
        except (OSError, ValueError):
            pass

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


class _LineWriterFactory:
    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream

    def __call__(self, *args: Any) -> _LineWriter:
        return _LineWriter(str(args[0]) if args else "haunted", self.stream)


def configure_logging(
    level: str = "INFO", *, json: bool = True, stream: TextIO | None = None
) -> None:
    """`stream`: where the lines go (standard error by default).

    Our own lines (structlog) take structlog's fast path: a level-filtering bound
    logger whose processors render the line and write it straight to the stream,
    not through the standard library's logging (records, handlers, formatter: more
    than half of an access line's cost). Libraries' standard-library lines go
    through a handler on the same stream with the same processors and renderer, so
    both kinds of line have the same fields, redaction and format."""
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
        logger_factory=_LineWriterFactory(stream),
        # Not cached: a module's logger would keep the first configuration's level,
        # renderer and stream for good, and a later configure_logging (the CLI run
        # in-process, tests) would not reach it. Binding per line costs about 2 µs.
        cache_logger_on_first_use=False,
    )
    # Libraries' standard-library logs share the renderer.
    handler = logging.StreamHandler(stream)  # None: sys.stderr
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
