"""The event store: webhooks appended exactly once, read back in global order.

Built on the `eventsourcing` library's application recorders (SQLite or
PostgreSQL). Each webhook is one stored event whose originator id is
uuid5(event id), so a second copy of an id collides on the recorder's primary
key wherever it comes from (another batch, another process). The library's
notification id is the global position.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import psycopg
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    PersistenceError,
)

from projections.events import EventType, RecordedEvent
from service.diskspace import WriteSpace
from service.ingest import Envelope
from service.keyring import Keyring, KeysChanged, WrongMasterKey
from service.legacyrows import LegacyRows
from service.sealing import nonces
from service.storedevents import (
    ERASURE_TOPIC,
    Row,
    decode_rows,
    erasure_marker,
    originator_id,
    sealed,
    topic_for,
)
from service.storedheader import StoredHeader

# What a dead or unreachable database raises through the library or drivers.
STORE_ERRORS = (PersistenceError, sqlite3.Error, psycopg.Error, OSError)


# Tries an append makes before answering 503 (see `_append`).
APPEND_ATTEMPTS = 12


class StoreUnavailable(Exception):
    """The store cannot be read or written right now; callers answer 503."""


# What the append stored for an event: the header it wrote and the state's
# bytes (the committing process's worker matches rows against them).
Stored = tuple[StoredHeader, bytes]


@dataclass(frozen=True, slots=True)
class Appended:
    """The outcome of one append: accepted at `position`, or a duplicate of
    the copy already stored at `position`. An accepted one also carries what
    was stored, the header and the state's bytes, for the committing
    process's own worker (service/handoff.py); not part of the answer."""

    status: Literal["accepted", "duplicate"]
    position: int
    stored: Stored | None = field(default=None, compare=False, repr=False)


class PositionIndex(Protocol):
    """Backend SQL the library's recorder does not offer: positions by id,
    rows by position, and the in-place rewrites of the pre-encryption
    migration. Each backend has one (service/backends/)."""

    def positions(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]: ...

    def read_positions(self, positions: Sequence[int]) -> list[Row]:
        """(position, topic, state) rows at these positions, in order."""
        ...

    def ping(self) -> None:
        """Raise if the database cannot be reached right now."""
        ...

    def states_in(self, c: Any, positions: Sequence[int]) -> list[Row]:
        """Rows at these positions, read in transaction `c`."""
        ...

    def rewrite_states(self, c: Any, states: Sequence[tuple[int, bytes]]) -> None:
        """Replace stored states in place, in transaction `c`: only to
        encrypt or redact rows written before encryption."""
        ...

    def transaction(self, *, commit: bool) -> AbstractContextManager[Any]:
        """A write transaction that holds the write lock from its start, so
        what it reads cannot change before it commits."""
        ...

    def scan(
        self, after: int, limit: int, topics: Sequence[str], until: int | None
    ) -> tuple[list[Row], str | None]:
        """(position, topic, state) rows after `after`, in order, and the
        store's key epoch (service/livekeys.py) read by the same statement,
        so in the rows' snapshot (None when there are no rows): opening them
        needs no second transaction to learn whether an erasure changed the
        live keys. The library's select_notifications builds a UUID and a
        Notification per row, which costs more than decoding the event; a
        replay reads millions."""
        ...


class EventStore:
    """Appends batches of webhooks, one transaction per batch (group commit)."""

    def __init__(
        self,
        recorder: ApplicationRecorder,
        index: PositionIndex,
        keyring: Keyring,
        *,
        clock: type[datetime] = datetime,
    ) -> None:
        self.recorder = recorder
        self.index = index
        self.keyring = keyring
        self._clock = clock
        # Out of space: what readiness reports until a write succeeds.
        self.space = WriteSpace(keyring.probe_space)
        # Rows from before encryption: their migration and redaction.
        self.legacy = LegacyRows(index, keyring)

    def append(self, envelopes: Sequence[Envelope]) -> list[Appended]:
        """Store every new id once; answer each envelope in order.

        Duplicates inside the batch are settled here: the first copy is
        stored, later ones are answered with its position. Ids stored before
        (a sender's retry, another writer) collide on the primary key: the
        whole insert rolls back, and only then are the stored ids looked up
        and the rest inserted again, so no id is ever stored twice and the
        common case costs no look-up.
        """
        try:
            answers = self._append(envelopes)
        except (*STORE_ERRORS, WrongMasterKey) as e:  # the old key: 503 too
            self.space.saw(e)
            raise StoreUnavailable(str(e)) from e
        self.space.wrote()
        return answers

    def _append(self, envelopes: Sequence[Envelope]) -> list[Appended]:
        # Keyed by the event id (a str): UUIDs hash and compare in Python,
        # which showed in the ingest profile; uuid5 runs once per id.
        first: dict[str, Envelope] = {}
        for env in envelopes:
            first.setdefault(env.id, env)
        fresh = [(env, originator_id(event_id)) for event_id, env in first.items()]
        known: dict[str, int] = {}
        # The first attempt may only find out that some ids are stored; each
        # later one fails only because another writer committed meanwhile
        # (our ids, or a key for one of our new customers), so the budget
        # bounds work done elsewhere, not waiting. Two ingress processes
        # given the same burst of new customers used up six once.
        for _attempt in range(APPEND_ATTEMPTS):
            try:
                inserted = self._insert(fresh, self._clock.now(UTC))
            except KeysChanged:
                continue
            except IntegrityError:
                stored = self._stored(fresh)
                if not stored:
                    raise  # not a duplicate id: nothing to settle by retrying
                known.update(stored)
                fresh = [(env, oid) for env, oid in fresh if env.id not in stored]
                continue
            accepted = {env.id: i for (env, _), i in zip(fresh, inserted, strict=True)}
            return self._answers(envelopes, known, accepted)
        raise StoreUnavailable("could not settle concurrent appends of the same ids")

    def _stored(self, batch: list[tuple[Envelope, uuid.UUID]]) -> dict[str, int]:
        """Positions of the batch's ids that are stored already, by event id."""
        found = self.index.positions([oid for _, oid in batch])
        return {env.id: found[oid] for env, oid in batch if oid in found}

    def _insert(
        self, batch: list[tuple[Envelope, uuid.UUID]], received_at: datetime
    ) -> list[tuple[int, Stored]]:
        """Each event's position and what was stored for it, in order."""
        if not batch:
            return []
        newest: dict[str, datetime] = {}
        for env, _ in batch:
            when = newest.get(env.customer_id)
            if when is None or env.created_at > when:
                newest[env.customer_id] = env.created_at
        keys, new = self.keyring.for_batch(newest)
        written = [
            sealed(env, received_at, keys[env.customer_id], env.traceparent, oid, n)
            for (env, oid), n in zip(batch, nonces(len(batch)), strict=True)
        ]
        stored = [event for _, event in written]
        used = {cid: k.key_id for cid, k in keys.items() if k.key_id is not None}

        def in_transaction(c: Any) -> None:
            # New customers' keys commit with their first events, or not at all.
            self.keyring.store_new(c, new)
            self.keyring.verify(c, used)

        try:
            positions = self.recorder.insert_events(stored, verify=in_transaction)
        except BaseException:
            # Whatever failed, read these customers' keys afresh next time.
            self.keyring.forget_writers(newest)
            raise
        self.keyring.written(new)
        assert positions is not None and len(positions) == len(batch)
        return [
            (p, (header, event.state))
            for p, (header, event) in zip(positions, written, strict=True)
        ]

    @staticmethod
    def _answers(
        envelopes: Sequence[Envelope],
        known: dict[str, int],
        accepted: dict[str, tuple[int, Stored]],
    ) -> list[Appended]:
        answers = []
        for env in envelopes:
            inserted = accepted.pop(env.id, None)
            if inserted is not None:
                # Only the first copy in the batch is the accepted one.
                position, stored = inserted
                answers.append(Appended("accepted", position, stored))
                known[env.id] = position
            else:
                answers.append(Appended("duplicate", known[env.id]))
        return answers

    def read(
        self,
        after: int,
        limit: int,
        *,
        types: Iterable[EventType | None] = (),
        until: int | None = None,
        erasures: bool = False,
    ) -> list[RecordedEvent]:
        """Up to `limit` events with position > `after` (and <= `until`), in
        global order, optionally only of some types (and, with `erasures`,
        the records of erasures too)."""
        topics = [topic_for(t) for t in types]
        if topics and erasures:
            topics.append(ERASURE_TOPIC)
        try:
            rows, epoch = self.index.scan(after, limit, topics, until)
            return decode_rows(rows, self.keyring, epoch)
        except STORE_ERRORS as e:
            raise StoreUnavailable(str(e)) from e

    def read_positions(self, positions: Sequence[int]) -> list[RecordedEvent]:
        try:
            return decode_rows(self.index.read_positions(positions), self.keyring)
        except STORE_ERRORS as e:
            raise StoreUnavailable(str(e)) from e

    def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers, quickly."""
        try:
            self.index.ping()
        except STORE_ERRORS as e:
            raise StoreUnavailable(str(e)) from e

    def head(self) -> int:
        """The highest position stored, 0 for an empty store."""
        try:
            return self.recorder.max_notification_id() or 0
        except STORE_ERRORS as e:
            raise StoreUnavailable(str(e)) from e

    # -- erasure ---------------------------------------------------------------

    def append_erasure(self, customer_id: str, erased_at: datetime, work: Any) -> int:
        """Store the record of an erasure; `work(cursor)` runs in the same
        transaction (the key's destruction), so both happen or neither."""
        try:
            positions = self.recorder.insert_events(
                [erasure_marker(customer_id, erased_at)], erase=work
            )
        except STORE_ERRORS as e:
            raise StoreUnavailable(str(e)) from e
        assert positions
        return int(positions[0])
