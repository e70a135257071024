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
    """No token, or a bad, expired or revoked one."""

    code = "UNAUTHENTICATED"


class Forbidden(DomainError):
    """The caller lacks the permission in that team (`extensions.permission` names it)."""

    code = "FORBIDDEN"


class SecondFactorRequired(DomainError):
    """The caller proved a password but must still prove a second factor (a code of its
    own, beside the contract's, so that clients can prompt for it)."""

    code = "SECOND_FACTOR_REQUIRED"


class BadUserInput(DomainError):
    """Bad arguments: the request is what is wrong, and retrying it unchanged fails again."""

    code = "BAD_USER_INPUT"


class NotFound(DomainError):
    """What the request names does not exist, or the caller may not know it exists."""

    code = "NOT_FOUND"


class Conflict(DomainError):
    """The request clashes with the current state (e.g. an invite already used)."""

    code = "CONFLICT"


class QuotaExceeded(DomainError):
    """A plan quota (LLM tokens per period or per minute) is used up."""

    code = "QUOTA_EXCEEDED"


class RateLimited(DomainError):
    """A rate limit (auth attempts, `track`, LLM requests per minute) was hit."""

    code = "RATE_LIMITED"


class Unavailable(DomainError):
    """A dependency did not answer, so the request is not (fully) done: retry it."""

    code = "INTERNAL"

    def __init__(self, message: str, **extensions: object) -> None:
        super().__init__(message, retryable=True, **extensions)
