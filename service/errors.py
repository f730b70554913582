"""Errors a caller can cause or meet, independent of the transport.

Messages name the problem, never the caller's input (ids, emails, tokens):
they end up in other services' logs, and a huge value would not fit in the
answer's headers.
"""

from __future__ import annotations


class InvalidArgument(ValueError):
    """The request is malformed; `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFound(LookupError):
    """No such customer (or other resource); `count` is how many are missing."""

    def __init__(self, message: str, count: int = 1) -> None:
        super().__init__(message)
        self.count = count


class PositionNotReached(TimeoutError):
    """min_position was not applied before the caller's deadline."""


class PermissionDenied(PermissionError):
    """The caller may not do this (an admin operation without an admin
    certificate); `reason` is the ErrorInfo reason."""

    def __init__(self, message: str, reason: str = "NOT_AN_ADMIN") -> None:
        super().__init__(message)
        self.reason = reason


class ResourceExhausted(Exception):
    """A per-process limit is reached; `reason` names which (ErrorInfo)."""

    def __init__(self, reason: str, message: str, limit: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.limit = limit
