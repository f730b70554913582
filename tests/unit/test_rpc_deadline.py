"""A call whose deadline has passed is an info line, not an error traceback."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
import structlog

from service.eventstore import StoreUnavailable
from service.rpc.errors import unary


class Aborted(Exception):
    pass


class FakeContext:
    def __init__(self, remaining: float | None) -> None:
        self.remaining = remaining
        self.status: Any = None

    def time_remaining(self) -> float | None:
        return self.remaining

    async def abort_with_status(self, status: Any) -> None:
        self.status = status
        raise Aborted


class Servicer:
    def __init__(self, error: Exception) -> None:
        self.error = error

    @unary
    async def Call(self, request: Any, context: Any) -> Any:
        raise self.error


def call(error: Exception, remaining: float | None) -> FakeContext:
    context = FakeContext(remaining)
    with pytest.raises(Aborted):
        asyncio.run(Servicer(error).Call(None, context))
    return context


@pytest.mark.parametrize("error", [RuntimeError("bug?"), StoreUnavailable("x")])
def test_after_the_deadline_an_info_line(error: Exception) -> None:
    with structlog.testing.capture_logs() as logged:
        context = call(error, remaining=-0.5)
    assert context.status.code == grpc.StatusCode.DEADLINE_EXCEEDED
    (line,) = logged
    assert line["log_level"] == "info" and "exc_info" not in line
    assert "deadline passed" in line["event"]


def test_before_the_deadline_a_bug_is_still_an_error() -> None:
    with structlog.testing.capture_logs() as logged:
        context = call(RuntimeError("bug"), remaining=5)
    assert context.status.code == grpc.StatusCode.INTERNAL
    (line,) = logged
    assert line["log_level"] == "error" and line["exc_info"] is not None
