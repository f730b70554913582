"""The event store's contract, run against every backend."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from service.backends.sqlite.store import open_sqlite
from service.eventstore import EventStore
from service.quarantine import Quarantine
from testkit.keys import master_key
from testkit.webhooks import envelope


class EventStoreContract:
    store: EventStore
    quarantine: Quarantine

    def test_empty_store_has_head_zero(self) -> None:
        assert self.store.head() == 0
        assert self.store.read(0, 10) == []

    def test_append_assigns_increasing_positions(self) -> None:
        answers = self.store.append([envelope("a"), envelope("b"), envelope("c")])
        assert [a.status for a in answers] == ["accepted"] * 3
        positions = [a.position for a in answers]
        assert positions == sorted(positions) and len(set(positions)) == 3
        assert self.store.head() == positions[-1]

    def test_duplicates_in_batch_and_across_batches(self) -> None:
        first = self.store.append([envelope("a"), envelope("b"), envelope("a")])
        assert [a.status for a in first] == ["accepted", "accepted", "duplicate"]
        assert first[2].position == first[0].position
        again = self.store.append([envelope("b"), envelope("new")])
        assert again[0].status == "duplicate"
        assert again[0].position == first[1].position
        assert again[1].status == "accepted"
        assert len(self.store.read(0, 100)) == 3

    def test_stored_verbatim_with_metadata(self) -> None:
        env = envelope("e1", kind="balance_changed")
        (answer,) = self.store.append([env])
        (event,) = self.store.read(0, 10)
        assert event.position == answer.position
        assert event.id == "e1" and event.customer_id == "c1"
        assert event.raw == env.raw
        assert event.type_name == "balance_changed"
        assert event.type is not None and event.type.name == "BALANCE_CHANGED"
        assert event.created_at == env.created_at
        assert event.received_at.tzinfo is not None
        assert event.body == env.body

    def test_unknown_types_are_stored_and_filterable(self) -> None:
        self.store.append([envelope("k"), envelope("u", kind="Points expired")])
        (unknown,) = self.store.read(0, 10, types=[None])
        assert unknown.id == "u" and unknown.type is None
        assert unknown.type_name == "Points expired"

    def test_read_pages_in_global_order(self) -> None:
        self.store.append([envelope(f"e{i}") for i in range(25)])
        seen, after = [], 0
        while page := self.store.read(after, 10):
            seen.extend(page)
            after = page[-1].position
        assert [e.id for e in seen] == [f"e{i}" for i in range(25)]
        assert self.store.read(0, 100, until=seen[4].position)[-1].id == "e4"

    def test_read_positions(self) -> None:
        answers = self.store.append([envelope(f"e{i}") for i in range(5)])
        picked = [answers[3].position, answers[1].position]
        assert [e.id for e in self.store.read_positions(picked)] == ["e1", "e3"]

    def test_concurrent_appends_of_the_same_id_store_it_once(self) -> None:
        results = []

        def post() -> None:
            results.extend(self.store.append([envelope("same"), envelope("x")]))

        threads = [threading.Thread(target=post) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(a.status == "accepted" for a in results) == 2
        assert len(self.store.read(0, 100)) == 2

    def test_quarantine_keeps_the_raw_request(self) -> None:
        qid = self.quarantine.add("bad json", {"x-a": "1"}, b"\xff not json")
        item = self.quarantine.get(qid)
        assert item is not None
        assert (item.reason, item.headers, item.body) == (
            "bad json",
            {"x-a": "1"},
            b"\xff not json",
        )
        assert [q.id for q in self.quarantine.list()] == [qid]
        assert self.quarantine.count() == 1


class TestSqliteEventStore(EventStoreContract):
    @pytest.fixture(autouse=True)
    def _store(self, tmp_path: Path):
        self.store, self.quarantine, factory = open_sqlite(tmp_path)
        yield
        factory.close()

    def test_survives_reopening(self, tmp_path: Path) -> None:
        self.store.append([envelope("a")])
        store, _, factory = open_sqlite(tmp_path)
        try:
            assert [e.id for e in store.read(0, 10)] == ["a"]
            assert store.append([envelope("a")])[0].status == "duplicate"
        finally:
            factory.close()


class TestPostgresEventStore(EventStoreContract):
    @pytest.fixture(autouse=True)
    def _store(self, pg_url: str):
        from service.backends.postgres.store import open_postgres

        self.store, self.quarantine, factory = open_postgres(pg_url, master_key())
        yield
        factory.close()


def test_quarantined_request_reprocessed_once(tmp_path: Path) -> None:
    from service.reprocess import reprocess

    store, quarantine, factory = open_sqlite(tmp_path)
    try:
        good = envelope("was-refused")
        hdrs = {"x-jericommerce-event-type": "Balance changed"}
        # As if an older parser had refused a body today's accepts.
        qid = quarantine.add("old parser said no", hdrs, good.raw)
        bad = quarantine.add("not JSON", hdrs, b"garbage")
        first = reprocess(quarantine, store, qid)
        assert first.stored and first.detail.startswith("accepted at position")
        again = reprocess(quarantine, store, qid)
        assert not again.stored and "already" in again.detail
        still = reprocess(quarantine, store, bad)
        assert not still.stored and "still invalid" in still.detail
        assert [e.id for e in store.read(0, 10)] == ["was-refused"]
        # One that will never be valid is dismissed: closed, still listed.
        assert quarantine.open_count() == 1
        assert quarantine.resolve(bad, "dismissed: garbage from a test tool")
        assert quarantine.open_count() == 0
        assert "already" in reprocess(quarantine, store, bad).detail
        # A copy the sender retried meanwhile is answered as a duplicate.
        dup = quarantine.add("old parser said no", hdrs, good.raw)
        assert "duplicate" in reprocess(quarantine, store, dup).detail
        assert len(store.read(0, 10)) == 1
    finally:
        factory.close()


def test_sqlite_commits_are_durable_against_power_loss(tmp_path: Path) -> None:
    _, _, factory = open_sqlite(tmp_path)
    try:
        with factory.datastore.transaction(commit=False) as c:
            c.execute("PRAGMA journal_mode")
            assert c.fetchone()[0] == "wal"
            c.execute("PRAGMA synchronous")
            assert c.fetchone()[0] == 2  # FULL
    finally:
        factory.close()
