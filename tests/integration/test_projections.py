"""The worker and the read-model store, run against every backend: the stored
models must equal the pure fold of the same events."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from projections.customer.codec import decode_state
from projections.customer.model import fold, view
from projections.events import ERASURE, RecordedEvent
from projections.events import EventType as T
from projections.rebuild import rebuild
from projections.stores.rows import Batch, DeadLetter
from projections.stores.sql import SqlReadModels
from projections.worker import ProjectionWorker
from testkit.sources import ListSource, history

T0 = datetime(2026, 3, 8, 12, tzinfo=UTC)


def stored_views(models: SqlReadModels) -> dict[str, object]:
    return {cid: view(decode_state(blob)) for cid, blob in models.iter_states()}


def stored_rows(models: SqlReadModels) -> dict[str, object]:
    """Everything readers see besides the views: ledgers, histories, and
    what the email and tier indexes answer."""
    out: dict[str, object] = {}
    for cid, blob in models.iter_states():
        state = decode_state(blob)
        out[cid] = (
            models.ledger(cid, after=(-1, ""), limit=1000),
            models.history(cid, after=0, limit=1000),
            state.email and models.lookup_email(state.email[2]),
        )
    for tier in ("Gold", "Silver"):
        out[tier] = models.list_customers(after="", limit=1000, tier=tier)
    return out


def table_exists(models: SqlReadModels, table: str) -> bool:
    try:
        with models.db.write() as c:
            c.execute(f"SELECT 1 FROM {models.db.name(table)} WHERE 1 = 0")
    except models.db.missing_table_errors:
        return False
    return True


def reference_views(source: ListSource) -> dict[str, object]:
    out = {}
    for cid in {e.customer_id for e in source.events}:
        result = fold(cid, source.events)
        if result.state.event_count:
            out[cid] = view(result.state)
    return out


class ReadModelContract:
    models: SqlReadModels

    def worker(self, source: ListSource, batch_size: int = 37) -> ProjectionWorker:
        return ProjectionWorker(source, self.models, batch_size=batch_size)

    def test_stored_models_equal_the_pure_fold(self) -> None:
        source = ListSource()
        history(source)
        assert self.worker(source).run_once() == len(source.events)
        assert stored_views(self.models) == reference_views(source)
        assert self.models.applied_position() == source.head()

    def test_resumes_from_the_stored_position(self) -> None:
        source = ListSource()
        history(source, 100)
        self.worker(source).run_once()
        history_more = ListSource()
        history(history_more, 160)
        for e in history_more.events[100:160]:
            source.add(
                e.type or e.type_name,
                id=e.id + "b",
                customer_id=e.customer_id,
                created_at=e.created_at,
                props=e.properties,
            )
        # A new worker (a restart) applies only what is new.
        assert self.worker(source).run_once() == 60
        assert stored_views(self.models) == reference_views(source)

    def test_unknown_types_advance_the_position_only(self) -> None:
        source = ListSource()
        source.add("Points expired", id="u1", customer_id="ghost")
        self.worker(source).run_once()
        assert self.models.applied_position() == 1
        assert self.models.get_state("ghost") is None

    def test_poison_is_dead_lettered_and_the_rest_applies(self) -> None:
        source = ListSource()
        source.add(T.BALANCE_CHANGED, id="ok1", customer_id="c1", amount=10)
        source.add(T.BALANCE_CHANGED, id="bad", customer_id="c1", amount="lots")
        source.add(T.BALANCE_CHANGED, id="ok2", customer_id="c1", amount=5)
        self.worker(source).run_once()
        (dead,) = self.models.dead_letters()
        assert (dead.event_id, dead.customer_id) == ("bad", "c1")
        assert "amount" in dead.reason
        blob = self.models.get_state("c1")
        assert blob is not None
        assert view(decode_state(blob)).points_balance == 15
        assert self.models.dead_letter_count() == 1

    def test_reads_by_email_tier_ledger_and_history(self) -> None:
        source = ListSource()
        source.add(
            T.CUSTOMER_CREATED,
            id="a1",
            customer_id="a",
            email="Ana@X.com",
            created_at=T0,
        )
        source.add(
            T.CUSTOMER_CREATED,
            id="b1",
            customer_id="b",
            email="ana@x.com",
            created_at=T0 + timedelta(hours=1),
        )
        for i in range(5):
            source.add(
                T.TIER_CHANGED,
                id=f"t{i}",
                customer_id=f"g{i}",
                current="Gold" if i % 2 == 0 else "Silver",
            )
        source.add(
            T.BALANCE_CHANGED,
            id="l2",
            customer_id="a",
            amount=2,
            created_at=T0 + timedelta(minutes=2),
        )
        source.add(
            T.BALANCE_CHANGED,
            id="l1",
            customer_id="a",
            amount=1,
            created_at=T0 + timedelta(minutes=1),
        )
        self.worker(source).run_once()
        found = self.models.lookup_email("  ANA@x.COM ")
        assert found is not None and decode_state(found).customer_id == "b"
        golds = self.models.list_customers(after="", limit=2, tier="Gold")
        assert [c for c, _ in golds] == ["g0", "g2"]
        rest = self.models.list_customers(after="g2", limit=2, tier="Gold")
        assert [c for c, _ in rest] == ["g4"]
        ledger = self.models.ledger("a", after=(-1, ""), limit=10)
        assert [e.event_id for e in ledger] == ["l1", "l2"]  # by createdAt
        assert self.models.history("a", after=0, limit=10) == [1, 8, 9]

    def test_the_tier_index_follows_each_batch(self) -> None:
        """Rows whose tier a batch keeps are written without it; the index
        must still answer each batch's tier, also for a customer erased and
        started again (with the same tier) in one batch."""
        source = ListSource()
        worker = self.worker(source, batch_size=2)
        batches: list[tuple[list[tuple[str, str]], str]] = [
            ([("t1", "Gold")], "Gold"),
            ([("b1", "")], "Gold"),
            ([("t2", "Silver"), ("b2", "")], "Silver"),
            ([("erase", ""), ("t3", "Silver")], "Silver"),
        ]
        for step, (events, expected) in enumerate(batches):
            for eid, tier in events:
                when = T0 + timedelta(minutes=len(source.events))
                if eid == "erase":
                    e = source.add("Customer erased", id=eid, customer_id="c1")
                    source.events[-1] = replace(e, type=None, body={}, kind=ERASURE)
                elif tier:
                    source.add(T.TIER_CHANGED, id=eid, customer_id="c1",
                               created_at=when, props={"current": tier})  # fmt: skip
                else:
                    source.add(T.BALANCE_CHANGED, id=eid, customer_id="c1",
                               created_at=when, amount=5)  # fmt: skip
            worker.run_once()
            listed = {
                tier: [cid for cid, _ in self.models.list_customers(
                    after="", limit=9, tier=tier)]
                for tier in ("Gold", "Silver")
            }  # fmt: skip
            assert listed == {
                t: ["c1"] if t == expected else [] for t in ("Gold", "Silver")
            }, step
        state = decode_state(self.models.get_state("c1") or b"")
        assert state.event_count == 1  # the erasure dropped the earlier record

    def test_rebuild_equals_live_and_switches(self) -> None:
        source = ListSource()
        history(source)
        live = self.worker(source)
        live.run_once()
        before = stored_views(self.models)
        rows_before = stored_rows(self.models)
        old = self.models.current_generation(refresh=True)
        progress = []
        done = rebuild(source, self.models, batch_size=50, on_progress=progress.append)
        assert done.finished and done.done == source.head()
        assert progress[-1].finished and len(progress) > 2
        g = self.models.current_generation(refresh=True)
        assert g == old + 1
        assert stored_views(self.models) == before
        # Staged history and ledger rows were merged, indexes built, and the
        # staging tables dropped.
        assert stored_rows(self.models) == rows_before
        assert not table_exists(self.models, f"history_stage_{g}")
        assert not table_exists(self.models, f"ledger_stage_{g}")
        assert self.models.dead_letter_count() == 1
        # The live worker notices the switch and carries on in the new tables.
        source.add(T.CUSTOMER_SCANNED, id="after", customer_id="c1")
        assert live.run_once() == 1
        assert stored_views(self.models) == reference_views(source)

    def test_a_rebuild_with_more_customers_than_it_keeps_in_memory(self) -> None:
        # keep_states below the customer count: states are flushed (first a
        # bulk insert, then upserts), evicted and loaded back mid-rebuild.
        source = ListSource()
        history(source)
        self.worker(source).run_once()
        before, rows_before = stored_views(self.models), stored_rows(self.models)
        assert len(before) > 6
        rebuild(source, self.models, batch_size=7, keep_states=3)
        assert stored_views(self.models) == before
        assert stored_rows(self.models) == rows_before

    def test_a_stopped_rebuild_leaves_nothing_behind(self) -> None:
        import threading

        source = ListSource()
        history(source)
        self.worker(source).run_once()
        before = stored_views(self.models)
        stop = threading.Event()

        def stop_after_first_batch(progress: object) -> None:
            stop.set()

        with pytest.raises(InterruptedError):
            rebuild(
                source,
                self.models,
                batch_size=50,
                on_progress=stop_after_first_batch,
                stop=stop,
            )
        g = self.models.current_generation(refresh=True) + 1
        for table in ("customers", "history_stage", "ledger_stage"):
            assert not table_exists(self.models, f"{table}_{g}")
        assert self.models.pending_generation() == 0
        assert stored_views(self.models) == before

    def test_dead_letter_retry_applies_at_most_once(self) -> None:
        from projections.deadletters import retry
        from projections.projector import customer_rows

        source = ListSource()
        source.add(T.BALANCE_CHANGED, id="ok", customer_id="c1", amount=10)
        source.add(T.BALANCE_CHANGED, id="bad", customer_id="c1", amount="lots")
        late = source.add(T.BALANCE_CHANGED, id="late", customer_id="c1", amount=5)
        self.worker(source).run_once()
        # As if an older fold had refused "late": the model without it, and a
        # dead letter for it. Then retry it with today's fold.
        g = self.models.current_generation(refresh=True)
        without = fold("c1", [e for e in source.events if e.id != "late"]).state
        with self.models.writing(g) as w:
            w.lock()
            w.write(
                Batch(
                    position=0,
                    customers=customer_rows({"c1": without}),
                    dead=[DeadLetter(late.position, "late", "c1", "x", "old fold")],
                )
            )

        def read(positions: list[int]) -> list[RecordedEvent]:
            return [e for e in source.events if e.position in positions]

        assert (
            view(decode_state(self.models.get_state("c1") or b"")).points_balance == 10
        )
        assert retry(self.models, read, late.position).applied
        after = view(decode_state(self.models.get_state("c1") or b""))
        assert after == view(fold("c1", source.events).state)
        assert after.points_balance == 15
        again = retry(self.models, read, late.position)
        assert not again.applied and "not a dead letter" in again.detail
        still = retry(self.models, read, 2)
        assert not still.applied and "still refused" in still.detail
        assert [d.event_id for d in self.models.dead_letters()] == ["bad"]

    def test_dismissed_dead_letters_stay_listed_but_stop_counting(self) -> None:
        source = ListSource()
        source.add(T.BALANCE_CHANGED, id="bad", customer_id="c1", amount="lots")
        self.worker(source).run_once()
        assert self.models.dead_letter_count() == 1
        assert self.models.dismiss_dead_letter(1, "sender bug, ticket 42")
        assert not self.models.dismiss_dead_letter(1, "again")
        assert not self.models.dismiss_dead_letter(99, "no such letter")
        (letter,) = self.models.dead_letters()
        assert letter.dismissed == "sender bug, ticket 42"
        assert self.models.dead_letter_count() == 0

    def test_a_dismissal_that_raced_a_switch_lands_in_the_new_tables(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        source = ListSource()
        source.add(T.BALANCE_CHANGED, id="bad", customer_id="c1", amount="lots")
        self.worker(source).run_once()
        old = self.models.current_generation(refresh=True)
        rebuild(source, self.models)  # switches in a new generation, drops `old`
        looked_up = self.models.current_generation
        answers = iter([old])  # the dismissal saw the generation before the switch

        def stale_then_fresh(*, refresh: bool = False) -> int:
            return next(answers, None) or looked_up(refresh=refresh)

        monkeypatch.setattr(self.models, "current_generation", stale_then_fresh)
        assert self.models.dismiss_dead_letter(1, "sender bug")
        monkeypatch.undo()
        (letter,) = self.models.dead_letters()
        assert letter.dismissed == "sender bug"

    def test_applied_position_after_a_switch_is_the_new_generations(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        source = ListSource()
        history(source, n=40)
        self.worker(source).run_once()
        old = self.models.current_generation(refresh=True)
        rebuild(source, self.models)  # switches in a new generation, drops `old`
        # A reader (an API process) still trusts the generation it cached.
        looked_up = self.models.current_generation
        monkeypatch.setattr(
            self.models,
            "current_generation",
            lambda *, refresh=False: looked_up(refresh=True) if refresh else old,
        )
        assert self.models.applied_position() == source.head() > 0

    def test_dismissals_survive_a_rebuild(self) -> None:
        source = ListSource()
        source.add(T.BALANCE_CHANGED, id="bad", customer_id="c1", amount="lots")
        source.add(T.BALANCE_CHANGED, id="worse", customer_id="c2", amount="x")
        source.add(T.CUSTOMER_SCANNED, id="ok", customer_id="c1")
        self.worker(source).run_once()
        assert self.models.dismiss_dead_letter(1, "sender bug, ticket 42")
        rebuild(source, self.models)
        dismissed = {d.event_id: d.dismissed for d in self.models.dead_letters()}
        assert dismissed == {"bad": "sender bug, ticket 42", "worse": None}
        assert self.models.dead_letter_count() == 1


class TestSqliteReadModels(ReadModelContract):
    @pytest.fixture(autouse=True)
    def _models(self, tmp_path: Path) -> Iterator[None]:
        from projections.stores.sqlite import open_sqlite_read_models

        self.models = open_sqlite_read_models(tmp_path / "rm.sqlite")
        yield
        self.models.db.close()


class TestPostgresReadModels(ReadModelContract):
    @pytest.fixture(autouse=True)
    def _models(self, pg_url: str) -> Iterator[None]:
        from projections.stores.postgres import open_postgres_read_models

        self.models = open_postgres_read_models(pg_url)
        yield
        self.models.db.close()
