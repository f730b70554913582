"""Re-applying dead letters once the fold can use them (after a fix).

The folds are order-independent, so an event applied late gives the same
model as one applied in order. The dead letter is deleted in the same
transaction that applies its event, so it is applied at most once; if the
fold still refuses it, nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from projections.customer.codec import decode_state
from projections.customer.model import PoisonEvent, apply, new_state
from projections.events import RecordedEvent
from projections.projector import customer_rows
from projections.stores.rows import Batch, ledger_row
from projections.stores.sql import SqlReadModels


@dataclass(frozen=True)
class RetryOutcome:
    position: int
    applied: bool
    detail: str


class _StillPoison(Exception):
    pass


def retry(
    models: SqlReadModels,
    read_positions: Callable[[Sequence[int]], list[RecordedEvent]],
    position: int,
) -> RetryOutcome:
    (event,) = read_positions([position]) or (None,)
    if event is None:
        return RetryOutcome(position, False, "no stored event at that position")
    g = models.current_generation(refresh=True)
    try:
        with models.writing(g) as w:
            applied_up_to = w.lock()
            if w.take_dead_letter(position) is None:
                return RetryOutcome(position, False, "not a dead letter (any more)")
            blob = w.load_states([event.customer_id]).get(event.customer_id)
            state = decode_state(blob) if blob else new_state(event.customer_id)
            try:
                entry = apply(state, event)
            except PoisonEvent as poison:
                raise _StillPoison(str(poison)) from None
            batch = Batch(
                position=applied_up_to,
                customers=customer_rows({event.customer_id: state}),
                ledger=[ledger_row(event.customer_id, entry)] if entry else [],
            )
            w.write(batch)
    except _StillPoison as e:
        return RetryOutcome(position, False, f"still refused: {e}")
    return RetryOutcome(position, True, "applied")
