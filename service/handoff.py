"""The hand-off: the events this process just committed, given to its own
projection worker already parsed, so it does not decrypt and parse again
what it wrote a moment before.

The store stays the truth. The worker still reads the rows in the store's
order (gaps, other writers' rows and erasures included); only a row whose
stored bytes are, byte for byte, those this process wrote at that position,
sealed under its customer's key that is still live, takes its header and
body from the hand-off instead of being decoded, decrypted and parsed.
Anything else (an erasure record, another process's row, a row stored
redacted or before encryption, an event the hand-off no longer holds) is
decoded from the store exactly as before, so the worker sees the same
events with or without it (tests/integration/test_handoff.py).

What it holds is personal data, so it holds little and briefly: at most
`limit` events, none older than `max_age` seconds, only while this
process's worker holds the lease, and an erasure record drops everything
held of its customer.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC

from projections.events import RecordedEvent
from service.eventstore import (
    STORE_ERRORS,
    Appended,
    EventStore,
    Stored,
    StoreUnavailable,
)
from service.groupcommit import AppendBatch
from service.ingest import Envelope
from service.storedevents import ERASURE_TOPIC, Row, decode_rows, recorded
from service.storedheader import StoredHeader

# A few batches of the worker's at full ingest: the worker takes what it is
# handed within milliseconds, or falls behind and reads the store anyway.
LIMIT = 4096
MAX_AGE = 5.0


class HandOff:
    """Events committed by this process, by position, for its worker; an
    EventSource (`read`, `head`) over `events` for the worker."""

    def __init__(
        self, events: EventStore, *, limit: int = LIMIT, max_age: float = MAX_AGE
    ) -> None:
        self.events = events
        self.limit = limit
        self.max_age = max_age
        # position -> (when held, envelope, (header, stored bytes)), in commit
        # order: oldest first (an OrderedDict: its oldest is dropped in O(1)).
        self._held: OrderedDict[int, tuple[float, Envelope, Stored]] = OrderedDict()
        self._lock = threading.Lock()
        self._active = False
        self.taken = 0  # events the worker got from here (a test's figure)

    # -- the ingress side -----------------------------------------------------

    def recording(self, append: AppendBatch) -> AppendBatch:
        """`append`, also holding what it accepted for the worker. It runs
        on the group commit's thread, before any request is answered and
        before the worker is woken for the batch."""

        def append_and_hold(envelopes: Sequence[Envelope]) -> list[Appended]:
            answers = append(envelopes)
            if self._active:
                self.hold(envelopes, answers)
            return answers

        return append_and_hold

    def hold(self, envelopes: Sequence[Envelope], answers: Sequence[Appended]) -> None:
        now = time.monotonic()
        with self._lock:
            held = self._held
            for env, answer in zip(envelopes, answers, strict=True):
                # A duplicate's position holds the first copy, maybe another
                # request's body: only what this batch stored is handed off.
                if answer.status == "accepted" and answer.stored is not None:
                    held[answer.position] = (now, env, answer.stored)
            self._trim(now)

    def follow(self, leader: bool) -> None:
        """Hold events only while this process's worker applies them."""
        self._active = leader
        if not leader:
            self.clear()

    def clear(self) -> None:
        with self._lock:
            self._held.clear()

    def forget(self, customer_id: str) -> None:
        """Drop everything held of a customer (their erasure)."""
        with self._lock:
            for position in [
                p
                for p, (_, env, _) in self._held.items()
                if env.customer_id == customer_id
            ]:
                del self._held[position]

    def _trim(self, now: float, after: int = 0) -> None:
        """Drop the oldest past `limit`, any older than `max_age`, and any
        at or before position `after` (the worker is past them: applied
        from the store, or by another worker). Under the lock."""
        held = self._held
        stale = now - self.max_age
        while held:
            position, (when, _, _) = next(iter(held.items()))
            if position > after and when >= stale and len(held) <= self.limit:
                break
            held.popitem(last=False)

    def held(self) -> int:
        return len(self._held)

    # -- the worker side (projections.projector.EventSource) ------------------

    def head(self) -> int:
        return self.events.head()

    def read(self, after: int, limit: int) -> list[RecordedEvent]:
        """What `EventStore.read(after, limit)` gives, with the bodies of
        events this process committed taken from the hand-off."""
        if not self._held:
            return self.events.read(after, limit)
        try:
            rows, epoch = self.events.index.scan(after, limit, (), None)
        except STORE_ERRORS as e:
            raise StoreUnavailable(str(e)) from e
        taken = self._take(after, rows)
        if taken:
            events = self._decode(rows, taken, epoch)
        else:
            events = self._from_store(rows, epoch)
        for event in events:
            if event.is_erasure:
                self.forget(event.customer_id)
        return events

    def _take(
        self, after: int, rows: Sequence[Row]
    ) -> dict[int, tuple[Envelope, Stored]]:
        """Remove and return what is held of `rows`, and drop what the
        worker is past (applied from the store, or by another worker)."""
        with self._lock:
            held = self._held
            taken = {}
            for position, topic, _ in rows:
                entry = held.pop(position, None)
                if entry is not None and topic != ERASURE_TOPIC:
                    taken[position] = (entry[1], entry[2])
            self._trim(time.monotonic(), after)
        return taken

    def _decode(
        self,
        rows: Sequence[Row],
        taken: dict[int, tuple[Envelope, Stored]],
        epoch: str | None,
    ) -> list[RecordedEvent]:
        keyring = self.events.keyring
        headers: dict[int, StoredHeader] = {}
        wanted = set()
        for position, _, state in rows:
            entry = taken.get(position)
            if entry is None:
                continue
            held, written = entry[1]
            # The very bytes this process stored there (a comparison, where
            # decoding the row's header cost ~2 us), sealed under a key (not
            # redacted at write), with the times in UTC as decoding them
            # would give: its header and body are the ones handed off.
            if (
                state == written
                and held.key_id
                and held.created_at.tzinfo is UTC
                and held.received_at.tzinfo is UTC
            ):
                headers[position] = held
                wanted.add(held.customer_id)
        if not headers:
            return self._from_store(rows, epoch)
        # As decode_rows: a body is readable only under its customer's live
        # key of the same id; one erased since is read from the store
        # (redacted).
        live = keyring.live_ids(wanted, epoch)
        out: list[RecordedEvent | None] = []
        missing: list[Row] = []
        for row in rows:
            position, topic, _ = row
            header = headers.get(position)
            key_id = None if header is None else live.get(header.customer_id)
            if header is None or key_id is None or key_id != header.key_id:
                out.append(None)
                missing.append(row)
                continue
            env = taken[position][0]
            out.append(recorded(position, topic, header, env.body, env.raw))
        self.taken += len(rows) - len(missing)
        if not missing:
            return out  # type: ignore[return-value]
        decoded = iter(self._from_store(missing, epoch))
        return [next(decoded) if e is None else e for e in out]

    def _from_store(
        self, rows: Sequence[Row], epoch: str | None
    ) -> list[RecordedEvent]:
        try:
            return decode_rows(rows, self.events.keyring, epoch)
        except STORE_ERRORS as e:
            raise StoreUnavailable(str(e)) from e
