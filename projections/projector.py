"""Applies batches of stored events to one generation of the read models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from projections.customer.codec import decode_state, encode_state
from projections.customer.model import CustomerState, PoisonEvent, apply, new_state
from projections.events import RecordedEvent
from projections.stores.rows import (
    Batch,
    CustomerRow,
    DeadLetter,
    index_fields,
    ledger_row,
)
from projections.stores.sql import SqlReadModels


class EventSource(Protocol):
    """The event store as the projections see it."""

    def read(self, after: int, limit: int) -> list[RecordedEvent]: ...
    def head(self) -> int: ...


class Projector:
    """Folds events into generation `generation`, one transaction per batch.

    Each event is applied exactly once because the views and the position
    they reflect are committed together, and a batch always starts from the
    committed position.

    With `keep_states`, decoded states stay in memory between batches (up to
    that many customers), so a rebuild decodes nothing it wrote itself; the
    live worker keeps none, so other writers (dead-letter retries) are
    always seen.
    """

    def __init__(
        self, models: SqlReadModels, generation: int, *, keep_states: int = 0
    ) -> None:
        self.models = models
        self.generation = generation
        self.position = models.position(generation)
        self.keep_states = keep_states
        self._states: dict[str, CustomerState] = {}
        # True while every customer of the generation is in _states (a
        # rebuild from empty tables that has not evicted yet).
        self._all_in_memory = keep_states > 0 and self.position == 0

    def apply(self, events: Sequence[RecordedEvent]) -> Batch:
        if not events:
            raise ValueError("nothing to apply")
        if events[0].position <= self.position:
            raise ValueError(
                f"event {events[0].position} is at or before position {self.position}"
            )
        states = self._states if self.keep_states else {}
        try:
            with self.models.writing(self.generation) as w:
                # The fence first: it also queues any other writer of this
                # generation behind us before we read the states we will write.
                w.advance(expected=self.position, to=events[-1].position)
                missing = sorted(
                    {e.customer_id for e in events if e.type is not None} - set(states)
                )
                stored = {} if self._all_in_memory else w.load_states(missing)
                batch = fold_batch(events, stored, states)
                w.write(batch)
        except BaseException:
            self._states.clear()  # they may hold this batch's uncommitted changes
            self._all_in_memory = False
            raise
        self.position = batch.position
        if len(self._states) > self.keep_states:
            self._states.clear()
            self._all_in_memory = False
        return batch


def fold_batch(
    events: Sequence[RecordedEvent],
    stored: dict[str, bytes],
    states: dict[str, CustomerState] | None = None,
) -> Batch:
    """The rows a batch of events writes, given the states it touches: in
    `states` (kept in memory) or else `stored` (encoded), else new."""
    states = {} if states is None else states
    dirty: dict[str, CustomerState] = {}
    batch = Batch(position=events[-1].position)
    history, ledger, dead = batch.history, batch.ledger, batch.dead
    for event in events:
        cid = event.customer_id
        history.append((cid, event.position))
        if event.type is None:
            continue  # stored and replayable, but no read model uses it
        state = dirty.get(cid)
        if state is None:
            state = states.get(cid)
            if state is None:
                blob = stored.get(cid)
                state = decode_state(blob) if blob is not None else new_state(cid)
                states[cid] = state
            dirty[cid] = state
        try:
            entry = apply(state, event)
        except PoisonEvent as poison:
            reason = str(poison)
            dead.append(
                DeadLetter(event.position, event.id, cid, event.type_name, reason)
            )
            continue
        if entry is not None:
            ledger.append(ledger_row(cid, entry))
    batch.customers = customer_rows(dirty)
    return batch


def customer_rows(states: dict[str, CustomerState]) -> list[CustomerRow]:
    rows = []
    for cid, state in states.items():
        if state.event_count == 0:
            continue  # only poison so far: the customer does not exist yet
        email, email_key, tier = index_fields(state)
        rows.append(
            CustomerRow(
                cid, email, email_key, tier, state.position, encode_state(state)
            )
        )
    return rows
