"""How a reader learns of an erasure made elsewhere, on every backend: the
key epoch read with the rows, and a cache of live keys per epoch."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from projections.worker import ProjectionWorker
from service.bootstrap import Container, build
from service.config import Settings
from testkit.keys import master_key_file
from testkit.privacy import created, points


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: object) -> Settings:
    if request.param == "postgres":
        env = {
            "DATABASE_URL": request.getfixturevalue("pg_url"),
            "MASTER_KEY_FILE": str(master_key_file()),
        }
    else:
        env = {"DATA_DIR": str(tmp_path)}
    return Settings.from_environ(env, require_secret=False)


@pytest.fixture
def store(settings: Settings) -> Iterator[Container]:
    c = build(settings)
    try:
        c.events.append(
            [
                created("a1", "ana"),
                points("a2", "ana", 50),
                created("b1", "bob"),
                points("b2", "bob", 7),
            ]
        )
        yield c
    finally:
        c.close()


def erase(c: Container, customer_id: str) -> None:
    privacy = c.privacy()
    erasure = privacy.erase(customer_id)
    ProjectionWorker(c.events, c.models).run_once()
    privacy.finish(erasure)


def test_rows_and_the_key_epoch_are_read_together(store: Container) -> None:
    index, keyring = store.events.index, store.events.keyring
    rows, epoch = index.scan(0, 10, (), None)
    assert len(rows) == 4 and [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert epoch is None and keyring.meta("key_epoch") is None  # no erasure yet
    erase(store, "bob")
    rows, epoch = index.scan(0, 10, (), None)
    assert len(rows) == 5 and epoch is not None
    assert epoch == keyring.meta("key_epoch")
    assert index.scan(5, 10, (), None) == ([], None)
    erase(store, "ana")
    assert index.scan(0, 1, (), None)[1] not in (None, epoch)


def test_a_read_begun_before_an_erasure_leaves_no_key_for_after_it(
    store: Container, settings: Settings
) -> None:
    """A reader whose key look-up was answered before an erasure, while
    another read in its process already moved the key cache on to the
    erasure's epoch: the key it read must not serve the reads after."""
    reader = build(settings)  # another process, nothing cached yet
    cache = reader.events.keyring._readers
    look_up = cache._rows
    raced = []

    def look_up_then_erase(ids: list[str]) -> object:
        found = look_up(ids)  # ana's key, still live
        if not raced:
            raced.append(True)
            erase(store, "ana")
            reader.events.read(0, 10)  # another thread: the new epoch
        return found

    try:
        cache._rows = look_up_then_erase  # type: ignore[assignment]
        assert not reader.events.read(0, 4)[0].redacted  # read before it
        assert raced
        events = [e for e in reader.events.read(0, 10) if e.customer_id == "ana"]
        assert len(events) == 3 and all(e.redacted or e.is_erasure for e in events)
        assert not reader.events.read(0, 10)[2].redacted  # bob still reads
    finally:
        reader.close()
