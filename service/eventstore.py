"""The event store: webhooks appended exactly once, read back in global order.

Built on the `eventsourcing` library's application recorders (SQLite or
PostgreSQL). Each webhook is one stored event whose originator id is
uuid5(event id), so a second copy of an id collides on the recorder's primary
key wherever it comes from (another batch, another process). The library's
notification id is the global position.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import psycopg
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    PersistenceError,
    StoredEvent,
)

from projections.events import EventType, RecordedEvent
from service.ingest import Envelope, loads

# Fixed forever: changing it would let old ids be stored again.
ID_NAMESPACE = uuid.UUID("6f1c3c55-3f0e-5d57-9a55-4f2f6c0b7a11")
TOPIC_PREFIX = "jericommerce:"
UNKNOWN_TOPIC = TOPIC_PREFIX + "UNKNOWN"

# What a dead or unreachable database raises through the library or drivers.
STORE_ERRORS = (PersistenceError, sqlite3.Error, psycopg.Error, OSError)


class StoreUnavailable(Exception):
    """The store cannot be read or written right now; callers answer 503."""


@dataclass(frozen=True, slots=True)
class Appended:
    """The outcome of one append: accepted at `position`, or a duplicate of
    the copy already stored at `position`."""

    status: Literal["accepted", "duplicate"]
    position: int


def originator_id(event_id: str) -> uuid.UUID:
    return uuid.uuid5(ID_NAMESPACE, event_id)


def topic_for(event_type: EventType | None) -> str:
    return UNKNOWN_TOPIC if event_type is None else TOPIC_PREFIX + event_type.name


def encode(envelope: Envelope, received_at: datetime) -> StoredEvent:
    """A small JSON header line, then the request body byte for byte."""
    header = json.dumps(
        [
            envelope.id,
            envelope.customer_id,
            envelope.type_name,
            envelope.created_at.isoformat(),
            received_at.isoformat(),
        ],
        separators=(",", ":"),
    ).encode()
    return StoredEvent(
        originator_id=originator_id(envelope.id),
        originator_version=1,
        topic=topic_for(envelope.type),
        state=header + b"\n" + envelope.raw,
    )


_TYPES: dict[str, EventType | None] = {topic_for(t): t for t in EventType}
_HEADER = json.JSONDecoder().decode
_fromiso = datetime.fromisoformat


def decode(position: int, topic: str, state: bytes) -> RecordedEvent:
    header, _, raw = state.partition(b"\n")
    event_id, customer_id, type_name, created_at, received_at = _HEADER(header.decode())
    return RecordedEvent(
        position,
        event_id,
        _TYPES.get(topic),
        type_name,
        customer_id,
        _fromiso(created_at),
        _fromiso(received_at),
        loads(raw),
        raw,
    )


class PositionIndex:
    """Backend SQL the library's recorder does not offer: positions by id."""

    def positions(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        raise NotImplementedError

    def read_positions(self, positions: Sequence[int]) -> list[RecordedEvent]:
        raise NotImplementedError

    def ping(self) -> None:
        """Raise if the database cannot be reached right now."""
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
        *,
        clock: type[datetime] = datetime,
    ) -> None:
        self.recorder = recorder
        self.index = index
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
                positions = (
                    self.recorder.insert_events(
                        [encode(first[event_id], received_at) for event_id in fresh]
                    )
                    if fresh
                    else []
                )
            except IntegrityError:
                continue
            assert positions is not None and len(positions) == len(fresh)
            accepted = dict(zip(fresh, positions, strict=True))
            return self._answers(envelopes, known, accepted)
        raise StoreUnavailable("could not settle concurrent appends of the same ids")

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
        except STORE_ERRORS as e:
            raise StoreUnavailable(str(e)) from e
        return [decode(*row) for row in rows]

    def read_positions(self, positions: Sequence[int]) -> list[RecordedEvent]:
        try:
            return self.index.read_positions(positions)
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
