"""Every GraphQL error carries a contract code; none carries a stack trace."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from graphql import GraphQLError

from services.errors import DomainError

log = structlog.get_logger(__name__)


def format_error(error: GraphQLError, debug: bool = False) -> dict[str, Any]:
    formatted: dict[str, Any] = dict(error.formatted)
    original = error.original_error
    if original is None:
        # Syntax and validation errors: the document is what is wrong.
        formatted.setdefault("extensions", {})
        formatted["extensions"] = {"code": formatted["extensions"].get("code") or "BAD_USER_INPUT"}
        return formatted
    if isinstance(original, DomainError):
        formatted["message"] = original.message
        formatted["extensions"] = {"code": original.code, **original.extensions}
        return formatted
    if isinstance(original, GraphQLError):  # e.g. a scalar that failed to parse
        formatted["extensions"] = {"code": "BAD_USER_INPUT"}
        return formatted
    request_id = str(uuid.uuid4())
    log.error(
        "unexpected error in a resolver", request_id=request_id, path=error.path, exc_info=original
    )
    return {
        "message": "internal error",
        "locations": formatted.get("locations"),
        "path": formatted.get("path"),
        "extensions": {"code": "INTERNAL", "requestId": request_id},
    }
