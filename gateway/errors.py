"""Every GraphQL error carries a contract code; none carries a stack trace.

- A domain error (services.errors) keeps its message and its code.
- An error of the document or of the request (syntax, validation, a limit, a
  persisted query) is BAD_USER_INPUT unless it names its own code.
- Anything else is INTERNAL: the client gets "internal error" and a requestId,
  and the log line with the exception carries the same request_id.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from graphql import GraphQLError

from services.errors import DomainError

log = structlog.get_logger(__name__)

INTERNAL = "INTERNAL"
BAD_USER_INPUT = "BAD_USER_INPUT"


def new_request_id() -> str:
    return uuid.uuid4().hex


def internal_error(
    error: BaseException, message: str = "unexpected error", **fields: Any
) -> dict[str, Any]:
    """Logs an unexpected exception under a fresh request id; returns the client's error."""
    request_id = new_request_id()
    log.error(message, request_id=request_id, exc_info=error, **fields)
    return {"message": "internal error", "extensions": {"code": INTERNAL, "requestId": request_id}}


def request_error(message: str, code: str = BAD_USER_INPUT, **extensions: Any) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code, **extensions}}


def format_error(error: GraphQLError, debug: bool = False) -> dict[str, Any]:
    original = error.original_error
    if original is None:
        # Syntax, validation, limits: the request is what is wrong, unless it says otherwise.
        formatted: dict[str, Any] = dict(error.formatted)
        extensions = dict(formatted.get("extensions") or {})
        extensions["code"] = extensions.get("code") or BAD_USER_INPUT
        formatted["extensions"] = extensions
        return formatted
    if isinstance(original, DomainError):
        formatted = dict(error.formatted)
        formatted["message"] = original.message
        formatted["extensions"] = {"code": original.code, **original.extensions}
        return formatted
    if isinstance(original, GraphQLError):  # e.g. a scalar that failed to parse
        formatted = dict(error.formatted)
        formatted["extensions"] = {"code": BAD_USER_INPUT}
        return formatted
    answer = internal_error(original, "unexpected error in a resolver", path=error.path)
    if error.locations is not None:
        answer["locations"] = [location.formatted for location in error.locations]
    if error.path is not None:
        answer["path"] = error.path
    return answer
