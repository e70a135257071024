"""What every resolver module shares: the caller and the scalars."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ariadne import ScalarType
from graphql import GraphQLResolveInfo

from services.errors import BadUserInput, Unauthenticated
from services.principal import Principal


def caller(info: GraphQLResolveInfo) -> Principal:
    """The authenticated caller, or UNAUTHENTICATED (naming why the token was refused)."""
    principal: Principal | None = info.context.get("principal")
    if principal is None:
        raise info.context.get("auth_error") or Unauthenticated("authentication required")
    return principal


datetime_scalar = ScalarType("DateTime")
EARLIEST, LATEST = datetime(1900, 1, 1), datetime(3000, 1, 1)


@datetime_scalar.serializer
def _serialize_datetime(value: datetime | str) -> str:
    if isinstance(value, str):  # already RFC 3339, as events carry it
        return value
    return value.isoformat().replace("+00:00", "Z")


@datetime_scalar.value_parser
def _parse_datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise BadUserInput("DateTime must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise BadUserInput("DateTime must be an RFC 3339 string") from error
    if parsed.tzinfo is None:
        raise BadUserInput("DateTime must carry a time zone")
    # Arithmetic on dates near the ends of datetime's range overflows: refused up front.
    if not EARLIEST <= parsed.astimezone(UTC).replace(tzinfo=None) < LATEST:
        raise BadUserInput("DateTime must be between the years 1900 and 2999")
    return parsed


json_scalar = ScalarType("JSON")

SCALARS = [datetime_scalar, json_scalar]
