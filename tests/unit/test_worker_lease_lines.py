"""The worker says what it does with the lease: standing by (once), holding
it, losing it, not reaching it; and reports each change of holder to its
`on_lease` (the lease gauge) and its status (/readyz)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import structlog

from projections.worker import ProjectionWorker


class ScriptedLease:
    """Answers acquire() from a script, then holds its last answer."""

    def __init__(self, script: list[bool | Exception]) -> None:
        self.script = list(script)
        self.done = threading.Event()

    def acquire(self) -> bool:
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if len(self.script) == 1:
            self.done.set()
        if isinstance(step, Exception):
            raise step
        return step

    def release(self) -> None:
        pass


def run(script: list[bool | Exception]) -> tuple[list[dict[str, Any]], list[bool], Any]:
    lease = ScriptedLease(script)
    changes: list[bool] = []
    worker = ProjectionWorker(
        source=None,  # type: ignore[arg-type]
        models=None,  # type: ignore[arg-type]
        poll_interval=0.001,
        lease=lease,
        on_lease=changes.append,
    )
    worker.run_once = lambda: 0  # type: ignore[method-assign]
    with structlog.testing.capture_logs() as logged:
        worker.start()
        assert lease.done.wait(5)
        time.sleep(0.05)
        status = worker.status()
        worker.stop()
    return logged, changes, status


def events(logged: list[dict[str, Any]]) -> Iterator[str]:
    return (line["event"] for line in logged)


def test_a_standby_says_so_once_then_takes_over() -> None:
    logged, changes, status = run([False, False, False, True])
    assert list(events(logged)) == [
        "standing by: another worker holds the lease",
        "holding the worker lease; applying",
    ]
    assert changes == [True]
    assert status.leader and status.ready


def test_losing_the_lease_is_a_warning() -> None:
    logged, changes, status = run([True, True, False])
    assert [(line["event"], line["log_level"]) for line in logged] == [
        ("holding the worker lease; applying", "info"),
        ("lost the worker lease; standing by", "warning"),
    ]
    assert changes == [True, False]
    assert status.standing_by and status.ready and not status.leader


def test_an_unreachable_lease_is_neither_held_nor_standing_by() -> None:
    down = ConnectionError("could not connect to server\nDETAIL: secret")
    logged, changes, status = run([True, down])
    lines = [line for line in logged if line["event"].startswith("cannot reach")]
    assert lines and lines[0]["error"] == "ConnectionError: could not connect to server"
    assert changes == [True, False]
    assert not status.ready and not status.leader and not status.standing_by
