"""The append inserts first and looks ids up only after a duplicate-key
failure: every answer must still be the one the look-up-first append gave,
in order, on both backends, with another writer racing it."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from service.eventstore import EventStore, StoreUnavailable
from service.ingest import Envelope, parse_envelope
from service.storedevents import sealed
from testkit.keys import master_key
from testkit.webhooks import envelope, webhook_body

Opener = Callable[[], tuple[EventStore, Any]]


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the same store again, as another process would."""
    factories: list[Any] = []

    def open_store() -> tuple[EventStore, Any]:
        if request.param == "sqlite":
            from service.backends.sqlite.store import open_sqlite

            store, _quarantine, factory = open_sqlite(tmp_path, master_key())
        else:
            from service.backends.postgres.store import open_postgres

            url = request.getfixturevalue("pg_url")
            store, _quarantine, factory = open_postgres(url, master_key())
        factories.append(factory)
        return store, factory

    yield open_store
    for factory in factories:
        factory.close()


def counting_lookups(store: EventStore) -> list[int]:
    """How many ids each position look-up of `store` asked for."""
    calls: list[int] = []
    real = store.index.positions

    def positions(ids: Any) -> Any:
        calls.append(len(ids))
        return real(ids)

    store.index.positions = positions  # type: ignore[method-assign]
    return calls


def answers(store: EventStore, batch: list[Envelope]) -> list[tuple[str, int]]:
    return [(a.status, a.position) for a in store.append(batch)]


def ids_in(store: EventStore) -> list[str]:
    return [e.id for e in store.read(0, 1000)]


def test_duplicates_inside_a_batch_are_settled_without_a_look_up(
    opener: Opener,
) -> None:
    store, _ = opener()
    lookups = counting_lookups(store)
    got = answers(store, [envelope(x) for x in "abacb"])
    a, b, c = got[0][1], got[1][1], got[3][1]
    assert got == [
        ("accepted", a),
        ("accepted", b),
        ("duplicate", a),
        ("accepted", c),
        ("duplicate", b),
    ]
    assert a < b < c
    assert lookups == []
    assert ids_in(store) == ["a", "b", "c"]


def test_stored_ids_are_looked_up_once_and_the_rest_inserted(opener: Opener) -> None:
    store, _ = opener()
    first = answers(store, [envelope("a"), envelope("b")])
    lookups = counting_lookups(store)
    got = answers(store, [envelope(x) for x in "xaybx"])
    # One failed insert, one look-up of the four distinct ids, then the two
    # fresh ones inserted.
    assert lookups == [4]
    x, y = got[0][1], got[2][1]
    assert got == [
        ("accepted", x),
        ("duplicate", first[0][1]),
        ("accepted", y),
        ("duplicate", first[1][1]),
        ("duplicate", x),
    ]
    assert first[1][1] < x < y
    assert ids_in(store) == ["a", "b", "x", "y"]
    # Only duplicates: answered, nothing stored.
    assert answers(store, [envelope("y"), envelope("a")]) == [
        ("duplicate", y),
        ("duplicate", first[0][1]),
    ]
    assert len(ids_in(store)) == 4


def test_another_writer_storing_our_ids_between_attempts(opener: Opener) -> None:
    store, _ = opener()
    other, _ = opener()
    (a_at,) = [p for _, p in answers(store, [envelope("a")])]
    real = store.index.positions
    raced: list[tuple[str, int]] = []

    def positions(ids: Any) -> Any:
        found = real(ids)
        if not raced:
            # After our look-up, before our second attempt: "c" arrives
            # through another process, so that attempt fails too.
            raced.extend(answers(other, [envelope("c")]))
        return found

    store.index.positions = positions  # type: ignore[method-assign]
    got = answers(store, [envelope(x) for x in "abcd"])
    (c_at,) = [p for _, p in raced]
    b_at, d_at = got[1][1], got[3][1]
    assert got == [
        ("duplicate", a_at),
        ("accepted", b_at),
        ("duplicate", c_at),
        ("accepted", d_at),
    ]
    assert c_at < b_at < d_at
    assert ids_in(store) == ["a", "c", "b", "d"]
    assert ids_in(other) == ["a", "c", "b", "d"]


def test_the_recorder_refuses_a_stored_id_whole(opener: Opener) -> None:
    store, _ = opener()
    answers(store, [envelope("a")])
    key = store.keyring.for_append({"c1": datetime.now(UTC)})["c1"]
    when = datetime.now(UTC)
    batch = [sealed(envelope(x), when, key)[1] for x in "za"]
    with pytest.raises(IntegrityError):
        store.recorder.insert_events(batch)
    assert ids_in(store) == ["a"]


def test_new_customers_keys_commit_with_their_first_events(
    opener: Opener, tmp_path: Path
) -> None:
    store, _ = opener()
    real = store.keyring.verify

    def failing(c: Any, used: Any) -> None:
        real(c, used)
        raise RuntimeError("the batch's transaction fails after its keys")

    store.keyring.verify = failing  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        store.append([envelope("n1", customer="new")])
    store.keyring.verify = real  # type: ignore[method-assign]
    assert store.keyring.for_batch({"new": datetime.now(UTC)}, fresh=True)[1]
    assert ids_in(store) == []
    # A duplicate makes the first attempt fail: the key made for it is
    # rolled back with it, and the retry's key is the one stored.
    answers(store, [envelope("old", customer="c1")])
    got = answers(store, [envelope("n2", customer="new"), envelope("old")])
    assert [s for s, _ in got] == ["accepted", "duplicate"]
    (event,) = store.read_positions([got[0][1]])
    assert event.raw == envelope("n2", customer="new").raw
    other, _ = opener()
    assert other.read_positions([got[0][1]])[0].raw == event.raw


def test_a_key_destroyed_by_another_process_is_not_used(opener: Opener) -> None:
    store, _ = opener()
    other, _ = opener()
    answers(store, [envelope("e1", customer="ana")])  # ana's key is cached
    erased_at = datetime.now(UTC)
    with other.index.transaction(commit=True) as c:
        other.keyring.shred(c, "ana", erased_at, 1)
    before = envelope("e2", customer="ana")  # created before the erasure
    after = parse_envelope(
        webhook_body("e3", "ana", "2099-01-01T00:00:00Z", amount=1), "Balance changed"
    )
    got = answers(store, [before, after])
    assert [s for s, _ in got] == ["accepted", "accepted"]
    e2, e3 = store.read_positions([p for _, p in got])
    assert e2.raw == b"" and e2.body == {}
    assert e3.raw == after.raw
    assert other.read_positions([got[1][1]])[0].raw == after.raw


def test_an_erasure_elsewhere_after_a_cached_one_still_redacts(
    opener: Opener,
) -> None:
    store, _ = opener()
    other, _ = opener()

    def hook(event_id: str, created: str) -> Envelope:
        body = webhook_body(event_id, "bo", created, amount=1)
        return parse_envelope(body, "Balance changed")

    answers(store, [hook("b1", "2029-01-01T00:00:00Z")])
    with store.index.transaction(commit=True) as c:
        store.keyring.shred(c, "bo", datetime(2030, 1, 1, tzinfo=UTC), 1)
    # Read and cached here: bo erased in 2030, no key.
    answers(store, [hook("b2", "2029-06-01T00:00:00Z")])
    with other.index.transaction(commit=True) as c:
        other.keyring.shred(c, "bo", datetime(2031, 1, 1, tzinfo=UTC), 2)
    # Created between the two erasures: its body must not be kept.
    got = answers(store, [hook("b3", "2030-06-01T00:00:00Z")])
    (b3,) = store.read_positions([got[0][1]])
    assert b3.raw == b"" and b3.body == {}
    # After both: a new key, readable.
    got = answers(store, [hook("b4", "2031-06-01T00:00:00Z")])
    assert other.read_positions([got[0][1]])[0].body != {}


def test_each_answered_position_holds_its_event(opener: Opener) -> None:
    """Positions come back in the batch's order, whatever the statement
    (SQLite's are worked out from the last row's id, not returned row by
    row), also after a duplicate made the insert roll back once."""
    store, _ = opener()
    rng = random.Random(7)
    for round_ in range(6):
        ids = [f"p{rng.randrange(120)}" for _ in range(rng.randrange(1, 40))]
        batch = [envelope(i, customer=f"c{rng.randrange(9)}") for i in ids]
        got = store.append(batch)
        stored = {
            e.position: e.id for e in store.read_positions([a.position for a in got])
        }
        assert [stored[a.position] for a in got] == ids, round_


def test_every_event_of_a_batch_is_sealed_under_its_own_nonce(
    opener: Opener,
) -> None:
    """A batch draws its nonces in one read of the random source."""
    from service.masterkey import NONCE
    from service.storedheader import decode_header

    store, _ = opener()
    batch = [envelope(f"n{i}", customer=f"c{i % 2}") for i in range(40)]
    store.append(batch)
    rows = store.index.scan(0, 100, (), None)[0]
    sealed = [decode_header(state)[2] for _, _, state in rows]
    assert len(sealed) == 40 and all(len(s) > NONCE for s in sealed)
    assert len({s[:NONCE] for s in sealed}) == 40
    assert [e.id for e in store.read(0, 100)] == [f"n{i}" for i in range(40)]


def test_sqlite_steady_state_statements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eventsourcing.sqlite import SQLiteConnection, SQLiteCursor

    from service.backends.sqlite.store import open_sqlite

    store, _quarantine, factory = open_sqlite(tmp_path, master_key())
    try:
        answers(store, [envelope(f"w{i}", customer=f"c{i}") for i in range(3)])
        seen: list[str] = []
        for cls, name in (
            (SQLiteCursor, "execute"),
            (SQLiteCursor, "executemany"),
            (SQLiteConnection, "commit"),
            (SQLiteConnection, "rollback"),
        ):
            real = getattr(cls, name)

            def spy(self: Any, *args: Any, _real: Any = real, _name: str = name) -> Any:
                seen.append(str(args[0]).split()[0].upper() if args else _name.upper())
                return _real(self, *args)

            monkeypatch.setattr(cls, name, spy)
        batch = [envelope(f"e{i}", customer=f"c{i % 3}") for i in range(32)]
        assert [a.status for a in store.append(batch)] == ["accepted"] * 32
    finally:
        factory.close()
    # No look-up of ids or keys before the write; the keys checked in it.
    assert seen == ["BEGIN", "INSERT", "SELECT", "COMMIT"]


def test_writers_racing_on_overlapping_batches_store_each_id_once(
    opener: Opener,
) -> None:
    stores = [opener()[0], opener()[0]]
    answered: dict[str, set[int]] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []
    unavailable: list[int] = []

    def write(store: EventStore, seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(15):
                ids = [f"r{rng.randrange(60)}" for _ in range(rng.randrange(1, 12))]
                batch = [envelope(i, customer=f"k{i[-1]}") for i in ids]
                for _try in range(10):
                    try:
                        got_all = store.append(batch)
                        break
                    except StoreUnavailable:
                        # A 503 under this much contention: the sender retries.
                        with lock:
                            unavailable.append(1)
                else:
                    raise AssertionError("ten 503s in a row")
                for i, got in zip(ids, got_all, strict=True):
                    with lock:
                        answered.setdefault(i, set()).add(got.position)
        except BaseException as e:  # reported below, not lost in the thread
            errors.append(e)

    threads = [
        threading.Thread(target=write, args=(stores[n % 2], n)) for n in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(unavailable) < 10, "a 503 should be rare even here"
    events = stores[0].read(0, 1000)
    by_id = {e.id: e.position for e in events}
    assert len(by_id) == len(events)  # no id stored twice
    # Every answer for an id named the one position it is stored at.
    assert {i: {p} for i, p in by_id.items()} == answered
    assert all(e.body for e in events)  # readable: keys committed with them
