"""The access log's budget: at most N lines a second, the rest counted in
the next line's `suppressed`; 0 is off. A caller's request id is kept only
when it is a plain token."""

from __future__ import annotations

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
