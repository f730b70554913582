"""The rebuild switches Python's cycle collector off (projections.rebuild.
cyclic_gc_paused); that is only safe while decoding and folding events make
no reference cycles, poison events and dead letters included."""

from __future__ import annotations

import gc
import json

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given

from projections.events import RecordedEvent
from projections.projector import customer_rows, fold_batch
from projections.rebuild import cyclic_gc_paused
from service.sealing import seal
from service.storedevents import decode_rows, topic_for
from testkit.strategies import event_sets, fast

KEY = AESGCM(bytes(32))


class OneKey:
    """Every customer's data key is KEY (the keyring's reading side)."""

    def live(
        self, customer_ids: set[str], epoch: object = None
    ) -> dict[str, tuple[str, AESGCM]]:
        return dict.fromkeys(customer_ids, ("key-1", KEY))


def _stored(event: RecordedEvent) -> tuple[int, str, bytes]:
    header = json.dumps(
        [
            event.id,
            event.customer_id,
            event.type_name,
            event.created_at.isoformat(),
            event.received_at.isoformat(),
            "key-1",
        ],
        separators=(",", ":"),
    ).encode()
    state = header + b"\n" + seal(KEY, event.raw, header)
    return event.position, topic_for(event.type), state


def _decode_and_fold(rows: list[tuple[int, str, bytes]]) -> int:
    events = sorted(decode_rows(rows, OneKey()), key=lambda e: e.position)  # type: ignore[arg-type]
    states: dict = {}
    dirty: dict = {}
    batch = fold_batch(events, {}, states, dirty_out=dirty)
    rows_out = customer_rows(dirty)
    return len(batch.history) + len(batch.dead) + len(rows_out)


@fast
@given(events=event_sets())
def test_decoding_and_folding_leave_no_cyclic_garbage(
    events: list[RecordedEvent],
) -> None:
    rows = [_stored(e) for e in events]
    with cyclic_gc_paused():
        # Youngest generation only: everything older is moved out of it by
        # the first call, so the second sees the fold's objects alone, and a
        # full collection per call walked the whole suite's heap (~0.2 s).
        gc.collect(0)
        assert _decode_and_fold(rows) > 0
        assert gc.collect(0) == 0, "the fold made reference cycles"


def test_the_collector_is_restored_as_it_was() -> None:
    assert gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()
