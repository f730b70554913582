"""Erasing some customers leaves every other customer's read model exactly
as it was, whatever the events, the batches and where the erasures fall; an
erased customer keeps only what arrived after their last erasure."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from projections.customer.codec import decode_state
from projections.events import ERASURE, REDACTED_EVENT, RecordedEvent
from projections.projector import fold_batch
from testkit.strategies import event_sets, fast


def marker(customer_id: str, position: int) -> RecordedEvent:
    when = datetime(2026, 6, 1, tzinfo=UTC)
    return RecordedEvent(
        position, f"erase-{position}", None, "Customer erased", customer_id,
        when, when, {}, b"", ERASURE,
    )  # fmt: skip


def redacted(event: RecordedEvent) -> RecordedEvent:
    """The event as a reader sees it once its customer's key is gone."""
    return RecordedEvent(
        event.position, event.id, event.type, event.type_name, event.customer_id,
        event.created_at, event.received_at, {}, b"", REDACTED_EVENT,
    )  # fmt: skip


def project(events: list[RecordedEvent], cuts: list[int]) -> dict[str, bytes]:
    """The customers table after applying `events` in position order, in
    batches cut at `cuts`, the way the worker writes it."""
    table: dict[str, bytes] = {}
    ordered = sorted(events, key=lambda e: e.position)
    bounds = [0, *sorted(set(cuts)), len(ordered)]
    for start, end in itertools.pairwise(bounds):
        batch_events = ordered[start:end]
        if not batch_events:
            continue
        stored = dict(table)
        batch = fold_batch(batch_events, stored)
        for cid in batch.erased:
            table.pop(cid, None)
        for row in batch.customers:
            table[row.customer_id] = row.state
    return table


@fast
@given(events=event_sets(), data=st.data())
def test_erasing_others_leaves_each_customers_model_unchanged(
    events: list[RecordedEvent], data: st.DataObject
) -> None:
    customers = sorted({e.customer_id for e in events})
    erased = data.draw(st.sets(st.sampled_from(customers), max_size=len(customers)))
    top = max(e.position for e in events)
    # Each erasure at some position; events of that customer before it are
    # read back redacted (their key is gone), the ones after stay.
    at = {cid: data.draw(st.integers(0, top + 1)) * 3 + 2 for cid in erased}
    log = [
        redacted(e) if e.customer_id in at and e.position < at[e.customer_id] else e
        for e in events
    ] + [marker(cid, position) for cid, position in at.items()]
    cuts = data.draw(st.lists(st.integers(0, len(log)), max_size=4))

    with_erasures = project(log, cuts)
    survivors = [
        e for e in events if e.customer_id not in at or e.position > at[e.customer_id]
    ]
    reference = project(survivors, [])

    assert with_erasures.keys() == reference.keys()
    for cid, state in reference.items():
        assert decode_state(with_erasures[cid]) == decode_state(state), cid
    for cid in erased:
        later = [e for e in events if e.customer_id == cid and e.position > at[cid]]
        if not any(e.type is not None for e in later):
            assert cid not in with_erasures


@fast
@given(events=event_sets())
def test_an_erasure_record_drops_the_customer_within_a_single_batch(
    events: list[RecordedEvent],
) -> None:
    cid = events[0].customer_id
    last = max(e.position for e in events)
    batch = fold_batch(
        [*sorted(events, key=lambda e: e.position), marker(cid, last + 1)], {}
    )
    assert cid in batch.erased
    assert all(row.customer_id != cid for row in batch.customers)
    assert all(h[0] != cid for h in batch.history)
    assert all(entry[0] != cid for entry in batch.ledger)
    assert all(d.customer_id != cid for d in batch.dead)
