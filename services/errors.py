"""Domain errors every facade may raise; the gateway maps each `code` to GraphQL."""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses; `code` is one of the contract's error codes."""

    code = "INTERNAL"

    def __init__(self, message: str, **extensions: object) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = extensions


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class SecondFactorRequired(DomainError):
    """The caller proved a password but must still prove a second factor (a code of its
    own, beside the contract's, so that clients can prompt for it)."""

    code = "SECOND_FACTOR_REQUIRED"


class BadUserInput(DomainError):
    code = "BAD_USER_INPUT"


class NotFound(DomainError):
    code = "NOT_FOUND"


class Conflict(DomainError):
    code = "CONFLICT"


class QuotaExceeded(DomainError):
    code = "QUOTA_EXCEEDED"


class RateLimited(DomainError):
    code = "RATE_LIMITED"


class Unavailable(DomainError):
    """A dependency did not answer, so the request is not (fully) done: retry it."""

    code = "INTERNAL"

    def __init__(self, message: str, **extensions: object) -> None:
        super().__init__(message, retryable=True, **extensions)
