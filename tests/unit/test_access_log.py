"""The access log's budget: at most N lines a second, the rest counted in
the next line's `suppressed`; 0 is off. A caller's request id is kept only
when it is a plain token; `trace_id` is the current span's."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
import structlog

from service import accesslog
from service.accesslog import AccessLog, request_id


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(accesslog.time, "monotonic", c)
    return c


def test_a_burst_beyond_the_budget_is_counted_not_lost(clock: Clock) -> None:
    access = AccessLog("test.access", 3)
    with structlog.testing.capture_logs() as logged:
        results = [access.line("http request", n=n) for n in range(10)]
        assert results == [True] * 3 + [False] * 7
        clock.now += 0.5  # half a second refills half the budget: one line
        assert access.line("http request", n=10)
        assert not access.line("http request", n=11)
        clock.now += 10  # the bucket never holds more than a second's worth
        assert [access.line("http request", n=n) for n in range(4)] == [True] * 3 + [
            False
        ]
    assert [line["n"] for line in logged] == [0, 1, 2, 10, 0, 1, 2]
    assert "suppressed" not in logged[0]
    assert logged[3]["suppressed"] == 7
    assert logged[4]["suppressed"] == 1
    assert all(line["log_level"] == "info" for line in logged)


def test_zero_turns_it_off(clock: Clock) -> None:
    access = AccessLog("test.access", 0)
    with structlog.testing.capture_logs() as logged:
        assert not access.enabled
        assert not access.take() and not access.line("http request")
    assert logged == []


@pytest.mark.parametrize(
    "given", ["req-42", "0b0d2bc1bcb44b77a90313efaa33633d", "A.b_c-9"]
)
def test_a_plain_request_id_is_kept(given: str) -> None:
    assert request_id(given) == given


@pytest.mark.parametrize(
    "given", [None, "", "jane@example.com", "a b", "x" * 65, "naïve", "id\nforged"]
)
def test_anything_else_gets_a_new_id(given: str | None) -> None:
    minted = request_id(given)
    assert minted != given and len(minted) == 32 and minted.isalnum()


class _SpanContext:
    def __init__(self, trace: int, valid: bool) -> None:
        self.trace_id, self.is_valid = trace, valid


class _FakeTraceApi:
    """Stands for opentelemetry.trace: the one call the access log makes."""

    def __init__(self, context: _SpanContext) -> None:
        self.context = context

    def get_current_span(self) -> _FakeTraceApi:
        return self

    def get_span_context(self) -> _SpanContext:
        return self.context


@pytest.fixture
def trace_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[_FakeTraceApi]:
    fake = _FakeTraceApi(_SpanContext(0, False))
    accesslog._trace_api.cache_clear()
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", fake)
    yield fake
    accesslog._trace_api.cache_clear()


def test_trace_id_is_the_current_spans(trace_api: _FakeTraceApi) -> None:
    assert accesslog.trace_id() is None  # no span: no id
    trace_api.context = _SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, True)
    assert accesslog.trace_id() == "4bf92f3577b34da6a3ce929d0e0e4736"
    trace_api.context = _SpanContext(1, True)
    assert accesslog.trace_id() == "0" * 31 + "1"


def test_without_the_api_there_is_no_trace_id(monkeypatch: pytest.MonkeyPatch) -> None:
    accesslog._trace_api.cache_clear()
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)  # ImportError
    try:
        assert accesslog.trace_id() is None
    finally:
        accesslog._trace_api.cache_clear()
