"""Property: whatever order the events were stored in, and however the worker
batched them, the stored read models equal the pure fold of the same set."""

from __future__ import annotations

import dataclasses
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.customer.codec import decode_state
from projections.customer.model import fold, view
from projections.events import RecordedEvent
from projections.stores.sqlite import open_sqlite_read_models
from projections.worker import ProjectionWorker
from testkit.sources import ListSource
from testkit.strategies import event_sets


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(events=event_sets(), data=st.data())
def test_worker_models_equal_the_fold(
    events: list[RecordedEvent], data: st.DataObject
) -> None:
    # The store keeps one copy per id, in whatever order they arrived.
    unique = list({e.id: e for e in events}.values())
    arrival = data.draw(st.permutations(unique))
    source = ListSource()
    source.events = [
        dataclasses.replace(e, position=i + 1) for i, e in enumerate(arrival)
    ]
    models = open_sqlite_read_models(
        f"file:prop-{uuid.uuid4().hex}?mode=memory&cache=shared"
    )
    try:
        batch = data.draw(st.integers(1, 20))
        ProjectionWorker(source, models, batch_size=batch).run_once()
        stored = {cid: decode_state(blob) for cid, blob in models.iter_states()}
        dead = sorted((d.event_id, d.reason) for d in models.dead_letters(limit=10**6))
        expected_dead = []
        for cid in {e.customer_id for e in source.events}:
            result = fold(cid, source.events)
            expected_dead += result.dead
            if result.state.event_count == 0:
                assert cid not in stored
                continue
            assert view(stored[cid]) == view(result.state)
            ledger = models.ledger(cid, after=(-(2**62), ""), limit=10**6)
            assert [(e.event_id, e.amount) for e in ledger] == [
                (e.event_id, e.amount) for e in result.ledger
            ]
        assert dead == sorted(expected_dead)
    finally:
        models.db.close()
