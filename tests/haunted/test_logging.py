"""haunted/logging.py: JSON lines (or readable text), and no secret ever printed."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog
from opentelemetry import trace

from haunted.logging import REDACTED, configure_logging
from tests.conftest import SpanCollector
from tests.haunted import logging_restored

SECRETS = ("hunter2", "tok-123", "Bearer abc", "abc.def", "sk_live_999")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    with logging_restored():
        yield


def _log_secrets() -> None:
    log = structlog.get_logger("haunted.test")
    log.info(
        "signed in with Bearer abc.def",
        password="hunter2",
        token="tok-123",
        headers={"Authorization": "Bearer abc", "Accept": "application/json"},
        nested=[{"api_key": "sk_live_999"}],
        user_id="u-1",
    )
    # Libraries log through the standard library: the same rules apply.
    logging.getLogger("somelibrary").warning("retrying with %s", "Bearer abc.def")


@pytest.mark.parametrize("as_json", [True, False])
def test_secrets_are_never_printed(capsys: pytest.CaptureFixture[str], as_json: bool) -> None:
    configure_logging("INFO", json=as_json)
    _log_secrets()
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    assert "signed in with" in printed and "retrying with" in printed
    assert "u-1" in printed  # what is not secret is kept
    for secret in SECRETS:
        assert secret not in printed, f"{secret!r} was printed"
    assert REDACTED in printed


def test_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json=True)
    _log_secrets()
    structlog.get_logger("haunted.test").debug("below the level")
    lines = capsys.readouterr().err.splitlines()
    records = [json.loads(line) for line in lines]
    assert [record["event"] for record in records] == [
        f"signed in with Bearer {REDACTED}",
        f"retrying with Bearer {REDACTED}",
    ]
    first = records[0]
    assert first["level"] == "info"
    assert first["logger"] == "haunted.test"
    assert "timestamp" in first
    assert first["password"] == REDACTED and first["token"] == REDACTED
    assert first["headers"] == {"Authorization": REDACTED, "Accept": "application/json"}
    assert first["nested"] == [{"api_key": REDACTED}]
    assert records[1]["level"] == "warning"


def test_a_line_logged_in_a_span_carries_its_trace_and_span_ids(
    capsys: pytest.CaptureFixture[str], spans: SpanCollector
) -> None:
    configure_logging("INFO", json=True)
    structlog.get_logger("haunted.test").info("outside any span")
    with trace.get_tracer("haunted.test").start_as_current_span("work") as span:
        structlog.get_logger("haunted.test").info("inside a span")
        logging.getLogger("somelibrary").warning("a library, inside the span")
    outside, inside, library = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert "trace_id" not in outside and "span_id" not in outside
    context = span.get_span_context()
    for line in (inside, library):
        assert line["trace_id"] == format(context.trace_id, "032x")
        assert line["span_id"] == format(context.span_id, "016x")


def test_our_lines_skip_the_standard_library_and_library_lines_still_pass_through_it() -> None:
    """structlog's own fast path (haunted/logging.py): our lines are rendered and written
    straight to the stream, with the fields, level filter and redaction; only libraries'
    lines go through a logging record and handler."""
    stream = io.StringIO()
    configure_logging("INFO", json=True, stream=stream)
    records: list[logging.LogRecord] = []

    class Counting(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logging.getLogger().addHandler(Counting())
    structlog.get_logger("haunted.access").info(
        "request", method="POST", path="/graphql", token="tok-123", status=200
    )
    structlog.get_logger("haunted.access").debug("below the level")
    logging.getLogger("somelibrary").warning("a library line")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["request", "a library line"]
    ours = lines[0]
    assert ours["logger"] == "haunted.access" and ours["level"] == "info"
    assert ours["token"] == REDACTED and ours["status"] == 200 and "timestamp" in ours
    assert [record.name for record in records] == ["somelibrary"]


def test_a_line_goes_to_the_current_stderr_and_a_closed_stream_fails_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Configured once, logging must follow `sys.stderr` (a test's capture replaces it
    and closes the old one), and a line that cannot be written must not raise into the
    code that logs: a consumer's dead-letter warning once failed the consumer this way."""
    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    configure_logging("INFO", json=True)
    first.close()
    later = io.StringIO()
    monkeypatch.setattr("sys.stderr", later)
    structlog.get_logger("haunted.test").warning("after the swap")
    assert json.loads(later.getvalue())["event"] == "after the swap"
    later.close()
    structlog.get_logger("haunted.test").warning("to a closed stream")  # must not raise


def test_a_later_configuration_reaches_loggers_already_used() -> None:
    """A module's logger used under one configuration (the CLI, run in-process by a test)
    follows the next one: its lines go to the new stream, rendered the new way."""
    log = structlog.get_logger("haunted.test.module")
    configure_logging("INFO", json=False, stream=io.StringIO())
    log.info("under the first configuration")
    sink = io.StringIO()
    configure_logging("INFO", json=True, stream=sink)
    log.info("under the second")
    assert json.loads(sink.getvalue())["event"] == "under the second"
