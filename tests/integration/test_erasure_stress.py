"""Erasures under concurrency, with real threads: two senders keep appending
one customer's future-dated `Balance changed` events (each starts or extends
the customer's new record), a running projection worker applies them, and
erasures of that customer run the way `loyalty erase` and EraseCustomer do
(erase, wait a while for the worker, finish). Afterwards every customer's
read model must equal a fold of the events still readable in the log, on
SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from projections.worker import ProjectionWorker
from service.bootstrap import Container, build
from service.config import Settings
from service.privacy import wait_applied
from testkit.erasure_model import (
    balance_changed,
    check,
    live_states,
)
from testkit.keys import master_key_file

SENDS = 120  # per sender
ERASURES = 4


def hammer(c: Container, worker_wait: float) -> list[BaseException]:
    """Two senders, an eraser and a running worker at once; errors seen."""
    worker = ProjectionWorker(c.events, c.models, batch_size=5, poll_interval=0.005)
    privacy = c.privacy()
    errors: list[BaseException] = []
    later = datetime.now(UTC) + timedelta(days=1)
    earlier = datetime.now(UTC) - timedelta(days=1)
    go = threading.Barrier(3)

    def sender(tag: str) -> None:
        try:
            go.wait()
            for i in range(SENDS):
                events = [balance_changed(f"{tag}-{i}", "hot", 1, later + timedelta(i))]
                if i % 10 == 0:  # another customer, untouched by the erasures
                    events.append(balance_changed(f"{tag}-o{i}", "other", 2, earlier))
                c.events.append(events)
                worker.wake()
        except BaseException as e:  # reported by the test
            errors.append(e)

    def eraser() -> None:
        try:
            go.wait()
            for _ in range(ERASURES):
                time.sleep(0.05)
                erasure = privacy.erase("hot")
                if erasure.position:
                    wait_applied(c.models, erasure.position, worker_wait, every=0.002)
                privacy.finish(erasure)
        except BaseException as e:
            errors.append(e)

    worker.start()
    threads = [
        threading.Thread(target=sender, args=("x",)),
        threading.Thread(target=sender, args=("y",)),
        threading.Thread(target=eraser),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    deadline = time.monotonic() + 30
    while c.models.applied_position() < c.events.head() and time.monotonic() < deadline:
        worker.wake()
        time.sleep(0.01)
    worker.stop()
    return errors


def assert_consistent(c: Container) -> None:
    assert c.models.applied_position() == c.events.head()
    check(c)
    states = live_states(c)
    assert states["other"].event_count == 2 * (SENDS // 10)
    # Events after the last erasure all count (how many depends on timing).
    erasures = [e for e in c.events.read(0, 100_000) if e.is_erasure]
    assert erasures, "no erasure ran"
    after = [
        e
        for e in c.events.read(erasures[-1].position, 100_000)
        if e.customer_id == "hot" and not e.kind
    ]
    if after:
        assert states["hot"].event_count == len(after)
        assert states["hot"].points_sum == len(after)
    else:
        assert "hot" not in states


@pytest.mark.parametrize("worker_wait", [2.0, 0.0])
def test_sqlite_erasures_under_traffic(tmp_path: Path, worker_wait: float) -> None:
    c = build(Settings.from_environ({"DATA_DIR": str(tmp_path)}, require_secret=False))
    try:
        assert hammer(c, worker_wait) == []
        assert_consistent(c)
    finally:
        c.close()


@pytest.fixture
def pg_container(pg_url: str) -> Iterator[Container]:
    c = build(
        Settings.from_environ(
            {"DATABASE_URL": pg_url, "MASTER_KEY_FILE": str(master_key_file())},
            require_secret=False,
        )
    )
    yield c
    c.close()


@pytest.mark.postgres
@pytest.mark.parametrize("worker_wait", [2.0, 0.0])
def test_postgres_erasures_under_traffic(
    pg_container: Container, worker_wait: float
) -> None:
    assert hammer(pg_container, worker_wait) == []
    assert_consistent(pg_container)
