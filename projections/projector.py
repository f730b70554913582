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
    """

    def __init__(self, models: SqlReadModels, generation: int) -> None:
        self.models = models
        self.generation = generation
        self.position = models.position(generation)

    def apply(self, events: Sequence[RecordedEvent]) -> Batch:
        if not events:
            raise ValueError("nothing to apply")
        if events[0].position <= self.position:
            raise ValueError(
                f"event {events[0].position} is at or before position {self.position}"
            )
        known = {e.customer_id for e in events if e.type is not None}
        stored = self.models.load_states(self.generation, sorted(known))
        states: dict[str, CustomerState] = {}
        batch = Batch(position=events[-1].position)
        for event in events:
            cid = event.customer_id
            batch.history.append((cid, event.position))
            if event.type is None:
                continue  # stored and replayable, but no read model uses it
            state = states.get(cid)
            if state is None:
                blob = stored.get(cid)
                state = decode_state(blob) if blob is not None else new_state(cid)
                states[cid] = state
            try:
                entry = apply(state, event)
            except PoisonEvent as poison:
                batch.dead.append(
                    DeadLetter(
                        event.position, event.id, cid, event.type_name, str(poison)
                    )
                )
                continue
            if entry is not None:
                batch.ledger.append(ledger_row(cid, entry))
        for cid, state in states.items():
            if state.event_count == 0:
                continue  # only poison so far: the customer does not exist yet
            email, email_key, tier = index_fields(state)
            batch.customers.append(
                CustomerRow(
                    cid, email, email_key, tier, state.position, encode_state(state)
                )
            )
        self.models.commit(self.generation, batch, expected=self.position)
        self.position = batch.position
        return batch
