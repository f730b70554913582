"""Several erasures of one customer at once (two officers, a retried call)
settle as one: exactly one answers `erased: true`, the audit trail holds one
record, every answer names the same record in the log, and the customer is
gone when each returns. On SQLite and PostgreSQL, each caller with its own
connections (as separate processes would be)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from projections.worker import ProjectionWorker
from service.bootstrap import Container, build
from service.config import Settings
from service.privacy import Erasure, wait_applied
from testkit.keys import master_key_file
from testkit.privacy import created, points

CALLERS = 4


def overlapping(callers: list[Container]) -> None:
    """Make the callers' erasures overlap for certain: each waits, once it
    has read the audit trail, until all have. A barrier before the call
    alone lets a late thread begin after another's erasure committed, and
    that is a later erasure (audited again), not a concurrent one."""
    read_all = threading.Barrier(len(callers))
    for c in callers:
        keyring = c.events.keyring
        read = keyring.last_erasure

        waited: list[int] = []

        def last_erasure(
            customer_id: str,
            read: Callable[[str], int] = read,
            waited: list[int] = waited,
        ) -> int:
            seen = read(customer_id)
            if not waited:  # a retry of the same call does not wait again
                waited.append(seen)
                read_all.wait(30)
            return seen

        keyring.last_erasure = last_erasure  # type: ignore[method-assign]


def erase_at_once(open_container: Callable[[], Container]) -> None:
    seed = open_container()
    callers = [open_container() for _ in range(CALLERS)]
    try:
        seed.events.append([created("a1", "ana"), points("a2", "ana", 5)])
        seed.events.append([created("b1", "bob")])
        ProjectionWorker(seed.events, seed.models).run_once()
        overlapping(callers)
        barrier = threading.Barrier(CALLERS)
        answers: list[Erasure] = []
        errors: list[BaseException] = []

        def call(c: Container) -> None:
            try:
                privacy = c.privacy()
                barrier.wait()
                erasure = privacy.erase("ana")
                if erasure.position:  # as `loyalty erase` does
                    worker.wake()
                    wait_applied(c.models, erasure.position, 10)
                privacy.finish(erasure)
                answers.append(erasure)
                assert c.models.get_state("ana") is None  # gone when it returns
            except BaseException as e:
                errors.append(e)

        worker = ProjectionWorker(seed.events, seed.models, poll_interval=0.01)
        worker.start()
        threads = [threading.Thread(target=call, args=(c,)) for c in callers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        worker.stop()
        assert errors == []
        assert sorted(a.erased for a in answers) == [False] * (CALLERS - 1) + [True]
        (winner,) = [a for a in answers if a.erased]
        assert winner.events == 2 and winner.position > 0
        assert {a.position for a in answers} == {winner.position}
        assert {a.erased_at for a in answers} == {winner.erased_at}
        audit = seed.events.keyring.erasures("ana")
        assert len(audit) == 1 and audit[0][2] == 2
        markers = [e for e in seed.events.read(0, 100) if e.is_erasure]
        assert [m.position for m in markers] == [winner.position]
        assert seed.models.get_state("bob") is not None
        # A later erasure, one at a time, is still answered and audited.
        again = seed.privacy().erase("ana")
        assert not again.erased and again.position == 0
        assert len(seed.events.keyring.erasures("ana")) == 2
    finally:
        for c in [seed, *callers]:
            c.close()


def test_sqlite_concurrent_erasures_settle_once(tmp_path: Path) -> None:
    settings = Settings.from_environ({"DATA_DIR": str(tmp_path)}, require_secret=False)
    erase_at_once(lambda: build(settings))


@pytest.mark.postgres
def test_postgres_concurrent_erasures_settle_once(pg_url: str) -> None:
    settings = Settings.from_environ(
        {"DATABASE_URL": pg_url, "MASTER_KEY_FILE": str(master_key_file())},
        require_secret=False,
    )
    erase_at_once(lambda: build(settings))


@pytest.fixture
def unknown_id_env(tmp_path: Path) -> Iterator[Settings]:
    yield Settings.from_environ({"DATA_DIR": str(tmp_path)}, require_secret=False)


def test_concurrent_erasures_of_an_unknown_id_are_audited_once(
    unknown_id_env: Settings,
) -> None:
    containers = [build(unknown_id_env) for _ in range(CALLERS)]
    try:
        overlapping(containers)
        barrier = threading.Barrier(CALLERS)
        answers: list[Erasure] = []

        def call(c: Container) -> None:
            barrier.wait()
            answers.append(c.privacy().erase("nobody"))

        threads = [threading.Thread(target=call, args=(c,)) for c in containers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(answers) == CALLERS and not any(a.erased for a in answers)
        assert len(containers[0].events.keyring.erasures("nobody")) == 1
    finally:
        for c in containers:
            c.close()
