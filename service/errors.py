"""Errors a caller can cause or meet, independent of the transport."""

from __future__ import annotations


class InvalidArgument(ValueError):
    """The request is malformed; `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFound(LookupError):
    """No such customer (or other resource); the message names it."""


class PositionNotReached(TimeoutError):
    """min_position was not applied before the caller's deadline."""


class PermissionDenied(PermissionError):
    """The caller may not do this (an admin operation without an admin
    certificate); `reason` is the ErrorInfo reason."""

    def __init__(self, message: str, reason: str = "NOT_AN_ADMIN") -> None:
        super().__init__(message)
        self.reason = reason
