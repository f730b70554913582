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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import psycopg
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    PersistenceError,
)

from projections.events import EventType, RecordedEvent
from service.ingest import Envelope
from service.keyring import Keyring, KeysChanged, seal
from service.storedevents import (
    REDACTED,
    Row,
    decode_rows,
    encode,
    erasure_marker,
    make_header,
    originator_id,
    parse_header,
    topic_for,
)

# What a dead or unreachable database raises through the library or drivers.
STORE_ERRORS = (PersistenceError, sqlite3.Error, psycopg.Error, OSError)

_fromiso = datetime.fromisoformat


class StoreUnavailable(Exception):
    """The store cannot be read or written right now; callers answer 503."""


@dataclass(frozen=True, slots=True)
class Appended:
    """The outcome of one append: accepted at `position`, or a duplicate of
    the copy already stored at `position`."""

    status: Literal["accepted", "duplicate"]
    position: int


class PositionIndex:
    """Backend SQL the library's recorder does not offer: positions by id."""

    def positions(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        raise NotImplementedError

    def read_positions(self, positions: Sequence[int]) -> list[Row]:
        """(position, topic, state) rows at these positions, in order."""
        raise NotImplementedError

    def ping(self) -> None:
        """Raise if the database cannot be reached right now."""
        raise NotImplementedError

    def states_in(self, c: Any, positions: Sequence[int]) -> list[Row]:
        """Rows at these positions, read in transaction `c`."""
        raise NotImplementedError

    def rewrite_states(self, c: Any, states: Sequence[tuple[int, bytes]]) -> None:
        """Replace stored states in place, in transaction `c`: only to
        encrypt or redact rows written before encryption."""
        raise NotImplementedError

    def transaction(self, *, commit: bool) -> AbstractContextManager[Any]:
        """A write transaction that holds the write lock from its start, so
        what it reads cannot change before it commits."""
        raise NotImplementedError

    def scan(
        self, after: int, limit: int, topics: Sequence[str], until: int | None
    ) -> list[tuple[int, str, bytes]]:
        """(position, topic, state) rows after `after`, in order. The library's
        select_notifications builds a UUID and a Notification per row, which
        costs more than decoding the event; a replay reads millions."""
        raise NotImplementedError


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

    def append(self, envelopes: Sequence[Envelope]) -> list[Appended]:
        """Store every new id once; answer each envelope in order.

        Duplicates inside the batch and of already-stored ids are answered
        with the first copy's position. If another writer stores one of our
        ids between the look-up and the insert, the insert fails as a whole
        and we look again, so no id is ever stored twice.
        """
        try:
            return self._append(envelopes)
        except STORE_ERRORS as e:
            raise StoreUnavailable(str(e)) from e

    def _append(self, envelopes: Sequence[Envelope]) -> list[Appended]:
        # Keyed by the event id (a str): UUIDs hash and compare in Python,
        # which showed in the ingest profile; uuid5 runs once per id.
        first: dict[str, Envelope] = {}
        for env in envelopes:
            first.setdefault(env.id, env)
        ids_by_oid = {originator_id(event_id): event_id for event_id in first}
        for _attempt in range(5):
            known = {
                ids_by_oid[oid]: position
                for oid, position in self.index.positions(list(ids_by_oid)).items()
            }
            fresh = [event_id for event_id in first if event_id not in known]
            received_at = self._clock.now(UTC)
            try:
                positions = self._insert(
                    [first[event_id] for event_id in fresh], received_at
                )
            except (IntegrityError, KeysChanged):
                continue
            accepted = dict(zip(fresh, positions, strict=True))
            return self._answers(envelopes, known, accepted)
        raise StoreUnavailable("could not settle concurrent appends of the same ids")

    def _insert(self, envelopes: list[Envelope], received_at: datetime) -> list[int]:
        if not envelopes:
            return []
        newest: dict[str, datetime] = {}
        for env in envelopes:
            when = newest.get(env.customer_id)
            if when is None or env.created_at > when:
                newest[env.customer_id] = env.created_at
        keys, new = self.keyring.for_batch(newest)
        stored = [encode(env, received_at, keys[env.customer_id]) for env in envelopes]
        used = {cid: k.key_id for cid, k in keys.items() if k.key_id is not None}

        def in_transaction(c: Any) -> None:
            # New customers' keys commit with their first events, or not at all.
            self.keyring.store_new(c, new)
            self.keyring.verify(c, used)

        positions = self.recorder.insert_events(stored, verify=in_transaction)
        assert positions is not None and len(positions) == len(envelopes)
        return list(positions)

    @staticmethod
    def _answers(
        envelopes: Sequence[Envelope],
        known: dict[str, int],
        accepted: dict[str, int],
    ) -> list[Appended]:
        answers = []
        for env in envelopes:
            position = accepted.pop(env.id, None)
            if position is not None:
                # Only the first copy in the batch is the accepted one.
                answers.append(Appended("accepted", position))
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
    ) -> list[RecordedEvent]:
        """Up to `limit` events with position > `after` (and <= `until`), in
        global order, optionally only of some types."""
        topics = [topic_for(t) for t in types]
        try:
            rows = self.index.scan(after, limit, topics, until)
            return decode_rows(rows, self.keyring)
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

    # -- erasure and stores from before encryption ------------------------------

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

    def redact_legacy(self, c: Any, positions: Sequence[int]) -> int:
        """In transaction `c`: rows at `positions` still in clear (written
        before encryption) keep their header and lose their body."""
        rewrites = []
        for position, _topic, state in self.index.states_in(c, positions):
            header, _, _ = state.partition(b"\n")
            fields = parse_header(header.decode())
            if len(fields) == 5:
                created, received = _fromiso(fields[3]), _fromiso(fields[4])
                new = make_header(
                    fields[0], fields[1], fields[2], created, received, REDACTED
                )
                rewrites.append((position, new + b"\n"))
        self.index.rewrite_states(c, rewrites)
        return len(rewrites)

    def encrypt_existing(self, batch: int = 500) -> int:
        """Encrypt every row written before encryption (five-field header),
        in place, batch by batch; returns how many. Safe to run while the
        service runs and to run again."""
        done = 0
        after = 0
        while True:
            rows = self.index.scan(after, batch, (), None)
            if not rows:
                return done
            after = rows[-1][0]
            legacy = []
            for position, _topic, state in rows:
                header, _, raw = state.partition(b"\n")
                fields = parse_header(header.decode())
                if len(fields) == 5:
                    legacy.append((position, fields, raw))
            if not legacy:
                continue
            for _attempt in range(5):
                try:
                    self._encrypt_rows(legacy)
                    break
                except KeysChanged:
                    continue
            done += len(legacy)

    def _encrypt_rows(self, legacy: list[tuple[int, list[Any], bytes]]) -> None:
        newest: dict[str, datetime] = {}
        for _position, fields, _raw in legacy:
            created = _fromiso(fields[3])
            if fields[1] not in newest or created > newest[fields[1]]:
                newest[fields[1]] = created
        keys = self.keyring.for_append(newest)
        rewrites = []
        for position, fields, raw in legacy:
            event_id, customer_id, type_name = fields[:3]
            key = keys[customer_id]
            created, received = _fromiso(fields[3]), _fromiso(fields[4])
            erased = key.erased_at is not None and created <= key.erased_at
            names = (event_id, customer_id, type_name, created, received)
            if key.aead is None or key.key_id is None or erased:
                new = make_header(*names, REDACTED) + b"\n"
            else:
                header = make_header(*names, key.key_id)
                new = header + b"\n" + seal(key.aead, raw, header)
            rewrites.append((position, new))
        used = {cid: k.key_id for cid, k in keys.items() if k.key_id is not None}
        with self.index.transaction(commit=True) as c:
            # Only rows still in clear: another run may have done some.
            current = {
                p: s for p, _t, s in self.index.states_in(c, [p for p, _ in rewrites])
            }
            todo = [
                (p, new)
                for p, new in rewrites
                if len(parse_header(current[p].partition(b"\n")[0].decode())) == 5
            ]
            self.index.rewrite_states(c, todo)
            self.keyring.verify(c, used)

    def legacy_count(self, batch: int = 5000) -> int:
        """How many rows are still in clear (a full scan)."""
        count, after = 0, 0
        while rows := self.index.scan(after, batch, (), None):
            after = rows[-1][0]
            count += sum(
                1
                for _p, _t, state in rows
                if len(parse_header(state.partition(b"\n")[0].decode())) == 5
            )
        return count
