"""Applies batches of stored events to one generation of the read models."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from projections.customer.codec import decode_state, encode_state
from projections.customer.model import CustomerState, PoisonEvent, apply, new_state
from projections.events import RecordedEvent
from projections.stores.answers import NO_ANSWERS, Answers
from projections.stores.rows import (
    Batch,
    CustomerRow,
    DeadLetter,
    index_fields,
    ledger_row,
)
from projections.stores.sql import SqlReadModels
from projections.stores.writer import GenerationWriter, Indexed


class EventSource(Protocol):
    """The event store as the projections see it."""

    def read(self, after: int, limit: int) -> list[RecordedEvent]: ...
    def head(self) -> int: ...


# Encodes many states with the first encoder and makes their answers with
# the second, possibly partly elsewhere: a rebuild's reader process helps
# with the final flush (service/rebuildreader.py). It runs the last argument
# once, while the other process works, and returns (encoded states, answers),
# in the states' order.
AnswerMany = Callable[
    [
        list[CustomerState],
        Callable[[CustomerState], bytes],
        Callable[[CustomerState], bytes],
        Callable[[], None],
    ],
    tuple[list[bytes], list[bytes]],
]


def _nothing() -> None:
    pass


class Projector:
    """Folds events into generation `generation`, one transaction per batch.

    Each event is applied exactly once because the views and the position
    they reflect are committed together, and a batch always starts from the
    committed position.
    """

    def __init__(self, models: SqlReadModels, generation: int) -> None:
        self.models = models
        self.generation = generation
        # Each changed customer's answer is made once per batch, by the
        # encoder the service gave the read models (answers.py).
        self.answers = models.answers
        self.position = models.position(generation)
        models.db.tune_for_live()  # a rebuild's tunes its own for bulk

    def apply(self, events: Sequence[RecordedEvent]) -> Batch:
        self._check(events)
        with self.models.writing(self.generation) as w:
            # The fence first: it also queues any other writer of this
            # generation behind us before we read the states we will write.
            w.advance(expected=self.position, to=events[-1].position)
            known = sorted(
                {e.customer_id for e in events if e.type is not None and not e.kind}
            )
            indexed: Indexed = {}
            stored = w.load_states(known, indexed)
            batch = fold_batch(events, stored, answers=self.answers)
            w.write(batch, indexed=indexed)
        self.position = batch.position
        return batch

    def _check(self, events: Sequence[RecordedEvent]) -> None:
        if not events:
            raise ValueError("nothing to apply")
        if events[0].position <= self.position:
            raise ValueError(
                f"event {events[0].position} is at or before position {self.position}"
            )


class RebuildProjector(Projector):
    """A projector for a generation nobody reads yet (a rebuild).

    States stay decoded in memory between batches (up to `keep_states`
    customers) and are written once, by `_flush`, instead of after every
    batch: profiling the rebuild showed it rewriting every customer's state
    dozens of times (docs/performance.md, "Why the code is shaped this
    way"). This is safe only because the generation is invisible
    until it is switched in, `rebuild` flushes before switching, and a
    rebuild that dies is discarded, never resumed.
    """

    def __init__(
        self,
        models: SqlReadModels,
        generation: int,
        *,
        keep_states: int,
        answer_many: AnswerMany | None = None,
    ) -> None:
        super().__init__(models, generation)
        self.answer_many = answer_many
        if self.position != 0:
            raise ValueError("a rebuild starts from an empty generation")
        models.db.tune_for_bulk()
        self.keep_states = keep_states
        self._states: dict[str, CustomerState] = {}
        self._dirty: set[str] = set()
        # Every customer is in memory until the first eviction; until then
        # no customer row has been written either (only evictions and
        # `finish` flush).
        self._all_in_memory = True

    def apply(self, events: Sequence[RecordedEvent]) -> Batch:
        self._check(events)
        with self.models.writing(self.generation) as w:
            w.advance(expected=self.position, to=events[-1].position)
            stored = {} if self._all_in_memory else w.load_states(self._missing(events))
            dirty: dict[str, CustomerState] = {}
            batch = fold_batch(
                events, stored, self._states, dirty_out=dirty, in_key_order=False
            )
            w.write(batch, staged=True)
        # An erased customer's earlier state is gone from memory: never flush it.
        self._dirty.difference_update(batch.erased)
        self._dirty.update(dirty)
        self.position = batch.position
        if len(self._states) > self.keep_states:
            self._flush()
            self._states.clear()
            self._all_in_memory = False
        return batch

    def _missing(self, events: Sequence[RecordedEvent]) -> list[str]:
        """Customers of `events` whose state is not in memory, in key order."""
        wanted = {e.customer_id for e in events if e.type is not None and not e.kind}
        return sorted(wanted - self._states.keys())

    def finish(self) -> None:
        """Write what is still in memory and merge the staged rows: the
        generation is complete when this returns."""
        merged = False

        def merge() -> None:
            nonlocal merged
            with self.models.writing(self.generation) as w:
                w.lock()
                w.merge_staged()
            merged = True

        # The staged rows are merged while the reader process (if any) makes
        # the answers, before the customers are indexed.
        rows = self._dirty_rows(meanwhile=merge)
        if not merged:
            merge()
        # Written below, the states are freed meanwhile by a thread, while a
        # rebuild keeps the cycle collector paused (held until after, they
        # made its first pass walk every state: ~1 s at 100,000 customers).
        # It starts once the rows are in: indexing them and committing are
        # each one long call into the database, the GIL released, where the
        # rows' insert takes the GIL back at every row.
        states, self._states = self._states, {}
        with (
            ThreadPoolExecutor(1, thread_name_prefix="rebuild-free") as pool,
            self.models.writing(self.generation) as w,
        ):
            w.lock()
            self._write_rows(w, rows)
            pool.submit(_free, states)
            del states
            w.complete_rebuild()

    def _flush(self) -> None:
        """Write every state changed since the last flush."""
        if not self._dirty:
            return
        rows = self._dirty_rows()
        with self.models.writing(self.generation) as w:
            w.lock()
            self._write_rows(w, rows)

    def _dirty_rows(
        self, meanwhile: Callable[[], None] = _nothing
    ) -> list[CustomerRow]:
        """The rows of every state changed since the last flush."""
        # In key order: appends to the primary-key index instead of inserts
        # all over it.
        rows = customer_rows(
            {cid: self._states[cid] for cid in sorted(self._dirty)},
            self.answers,
            self.answer_many,
            meanwhile,
        )
        self._dirty.clear()
        return rows

    def _write_rows(self, w: GenerationWriter, rows: list[CustomerRow]) -> None:
        if not rows:
            return
        if self._all_in_memory:  # no row written yet: a bulk insert
            w.insert_customers(rows)
        else:
            w.write(Batch(position=self.position, customers=rows))


def _free(states: dict[str, CustomerState]) -> None:
    """Empty `states` one by one: a Python loop, so this thread hands the
    GIL back whenever another asks for it."""
    while states:
        states.popitem()


def fold_batch(
    events: Sequence[RecordedEvent],
    stored: dict[str, bytes],
    states: dict[str, CustomerState] | None = None,
    *,
    dirty_out: dict[str, CustomerState] | None = None,
    in_key_order: bool = True,
    answers: Answers = NO_ANSWERS,
) -> Batch:
    """The rows a batch of events writes, given the states it touches: in
    `states` (kept in memory) or else `stored` (encoded), else new. With
    `dirty_out`, the changed states are handed back there instead of being
    encoded into the batch's customer rows (with their answers, made by
    `answers`). `in_key_order` sorts history and
    ledger rows by their tables' keys (pointless for staged rows).

    An erased customer's events (redacted: their key is gone) touch nothing;
    the record of an erasure drops everything held of that customer, in
    memory and (through `Batch.erased`) in the tables, so later events of the
    same customer id start a new record."""
    states = {} if states is None else states
    dirty: dict[str, CustomerState] = {}
    batch = Batch(position=events[-1].position)
    for event in events:
        cid = event.customer_id
        if event.kind:
            if event.is_erasure:
                _forget(batch, cid, stored, states, dirty)
            continue
        batch.history.append((cid, event.position))
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
            batch.dead.append(
                DeadLetter(event.position, event.id, cid, event.type_name, reason)
            )
            continue
        if entry is not None:
            batch.ledger.append(ledger_row(cid, entry))
    if dirty_out is None:
        batch.customers = customer_rows(dirty, answers)
    else:
        dirty_out.update(dirty)
    if in_key_order:  # fewer B-tree pages touched than arrival order
        batch.history.sort()
        batch.ledger.sort()
    return batch


def _forget(
    batch: Batch,
    cid: str,
    stored: dict[str, bytes],
    states: dict[str, CustomerState],
    dirty: dict[str, CustomerState],
) -> None:
    stored.pop(cid, None)
    states.pop(cid, None)
    dirty.pop(cid, None)
    batch.history = [row for row in batch.history if row[0] != cid]
    batch.ledger = [row for row in batch.ledger if row[0] != cid]
    batch.dead = [d for d in batch.dead if d.customer_id != cid]
    batch.erased.append(cid)


def customer_rows(
    states: dict[str, CustomerState],
    answers: Answers = NO_ANSWERS,
    answer_many: AnswerMany | None = None,
    meanwhile: Callable[[], None] = _nothing,
) -> list[CustomerRow]:
    if answer_many is not None:
        return _customer_rows_by_many(states, answers, answer_many, meanwhile)
    rows = []
    answer = answers.encode
    for cid, state in states.items():
        if state.event_count == 0:
            continue  # only poison so far: the customer does not exist yet
        email, email_key, tier = index_fields(state)
        rows.append(
            CustomerRow(
                cid,
                email,
                email_key,
                tier,
                state.position,
                encode_state(state),
                answer(state),
            )
        )
    return rows


def _customer_rows_by_many(
    states: dict[str, CustomerState],
    answers: Answers,
    answer_many: AnswerMany,
    meanwhile: Callable[[], None],
) -> list[CustomerRow]:
    """customer_rows, the answers made all at once by `answer_many`."""
    ids = [cid for cid, state in states.items() if state.event_count]
    live = [states[cid] for cid in ids]
    blobs, made = answer_many(live, encode_state, answers.encode, meanwhile)
    rows = []
    for cid, state, blob, answer in zip(ids, live, blobs, made, strict=True):
        email, email_key, tier = index_fields(state)
        rows.append(
            CustomerRow(cid, email, email_key, tier, state.position, blob, answer)
        )
    return rows
