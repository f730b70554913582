"""SQLite (the embedded default): the event store and quarantine in one file."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from eventsourcing.persistence import PersistenceError, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteFactory

from projections.stores.sqlite import SqliteDialect
from service.adapters.eventsourcing import (
    HookedSqliteRecorder,
    run_on_new_connections,
)
from service.backends.sqlite.files import EVENTS_FILE
from service.backends.sqlite.keyfile import embedded_master_key
from service.backends.sqlite.schema import migrate_events
from service.eventstore import EventStore
from service.keyring import Keyring, KeyTables
from service.masterkey import MasterKey
from service.quarantine import Quarantine
from service.storedevents import Row

DIALECT = SqliteDialect()
# A write first: the transaction takes SQLite's one write lock now, so what
# it reads next cannot change before it commits (a read first would pin a
# snapshot a writer's commit makes stale).
TAKE_WRITE_LOCK = "UPDATE key_meta SET value = value WHERE name = 'master_id'"
KEY_TABLES = KeyTables.of(DIALECT, write_lock=TAKE_WRITE_LOCK)
_CHUNK = 500  # well under SQLite's bound-parameter limit
_INSERT_CHUNK = 4000  # events a statement: 16,000 parameters
_MAX_ROWID = 2**63 - 1


class SqlitePositionIndex:
    def __init__(self, recorder: SQLiteApplicationRecorder, key_meta: str) -> None:
        self._recorder = recorder
        self._table = recorder.events_table_name
        # The key epoch (service/livekeys.py) as a column of the scan: SQLite
        # runs an uncorrelated subquery once a statement.
        self._epoch = f"(SELECT value FROM {key_meta} WHERE name = 'key_epoch')"

    def positions(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        found: dict[uuid.UUID, int] = {}
        with self._recorder.datastore.transaction(commit=False) as c:
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i : i + _CHUNK]
                c.execute(
                    f"SELECT originator_id, rowid FROM {self._table} "
                    f"WHERE originator_id IN ({','.join('?' * len(chunk))})",
                    [oid.hex for oid in chunk],
                )
                for row in c.fetchall():
                    found[uuid.UUID(row[0])] = row[1]
        return found

    def scan(
        self, after: int, limit: int, topics: Sequence[str], until: int | None
    ) -> tuple[list[Row], str | None]:
        sql = (
            f"SELECT rowid, topic, state, {self._epoch} FROM {self._table} "
            "WHERE rowid > ?"
        )
        params: list[object] = [after]
        if until is not None:
            sql += " AND rowid <= ?"
            params.append(until)
        if topics:
            sql += f" AND topic IN ({','.join('?' * len(topics))})"
            params += topics
        sql += " ORDER BY rowid LIMIT ?"
        params.append(limit)
        with self._recorder.datastore.transaction(commit=False) as c:
            c.execute(sql, params)
            found = c.fetchall()
        rows = [(r[0], r[1], r[2]) for r in found]
        return rows, found[0][3] if found else None

    def ping(self) -> None:
        with self._recorder.datastore.transaction(commit=False) as c:
            c.execute("SELECT 1")

    def read_positions(self, positions: Sequence[int]) -> list[Row]:
        rows: list[Row] = []
        with self._recorder.datastore.transaction(commit=False) as c:
            for i in range(0, len(positions), _CHUNK):
                chunk = positions[i : i + _CHUNK]
                c.execute(
                    f"SELECT rowid, topic, state FROM {self._table} "
                    f"WHERE rowid IN ({','.join('?' * len(chunk))}) ORDER BY rowid",
                    list(chunk),
                )
                rows.extend((r[0], r[1], r[2]) for r in c.fetchall())
        return sorted(rows)

    def states_in(self, c: Any, positions: Sequence[int]) -> list[Row]:
        rows: list[Row] = []
        for i in range(0, len(positions), _CHUNK):
            chunk = list(positions[i : i + _CHUNK])
            c.execute(
                f"SELECT rowid, topic, state FROM {self._table} "
                f"WHERE rowid IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            rows.extend((r[0], r[1], r[2]) for r in c.fetchall())
        return sorted(rows)

    def rewrite_states(self, c: Any, states: Sequence[tuple[int, bytes]]) -> None:
        for position, state in states:
            c.execute(
                f"UPDATE {self._table} SET state = ? WHERE rowid = ?", (state, position)
            )

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Any]:
        with self._recorder.datastore.transaction(commit=commit) as c:
            # A write first: SQLite's lock is taken now, not at the first
            # UPDATE, when a snapshot read before it could be stale.
            c.execute(TAKE_WRITE_LOCK)
            yield c


class KeyedRecorder(HookedSqliteRecorder):
    """The library's recorder, with work of ours in its insert transaction:
    an erasure's key destruction (`erase`), and the check that the data keys
    a batch was encrypted with are still live (`verify`), run after the
    insert has taken SQLite's write lock so nothing can change them until
    commit."""

    def insert_rows(
        self, c: Any, stored_events: Sequence[StoredEvent], options: Mapping[str, Any]
    ) -> Sequence[int] | None:
        if (erase := options.get("erase")) is not None:
            # Take the write lock before the erasure reads anything.
            c.execute(TAKE_WRITE_LOCK)
            erase(c)
        ids = self._insert_rows(c, stored_events)
        if (verify := options.get("verify")) is not None:
            verify(c)
        return ids

    def _insert_rows(self, c: Any, stored_events: Sequence[StoredEvent]) -> list[int]:
        """The library's insert, as one multi-row statement per batch (it runs
        one statement per event): the same table, columns and rowids (the
        notification ids), and the same IntegrityError for an id stored
        twice. SQLite gives each new row the table's largest rowid plus one,
        in the statement's order, and the write lock is ours until commit:
        the batch's rowids are the run ending at the statement's last one.
        (RETURNING them costs a driver step and a row object per event,
        then a dict to match them back by key.) Once the largest possible
        rowid is taken, SQLite would pick them at random: refused, though no
        log gets there."""
        ids: list[int] = []
        for i in range(0, len(stored_events), _INSERT_CHUNK):
            chunk = stored_events[i : i + _INSERT_CHUNK]
            c.execute(
                f"INSERT INTO {self.events_table_name} VALUES "
                + ",".join(["(?,?,?,?)"] * len(chunk)),
                [
                    v
                    for s in chunk
                    for v in (
                        s.originator_id.hex
                        if isinstance(s.originator_id, uuid.UUID)
                        else s.originator_id,
                        s.originator_version,
                        s.topic,
                        s.state,
                    )
                ],
            )
            last = c.lastrowid
            if last >= _MAX_ROWID:
                raise PersistenceError("the event table's rowids are exhausted")
            ids += range(last - len(chunk) + 1, last + 1)
        return ids


# Every connection commits with synchronous=FULL: in WAL mode a commit then
# survives power loss, not only a crash of the process. SQLite's compiled-in
# default is usually FULL, but a build may differ, and a 2xx promises
# durability. Deleted content (an erased customer's key, quarantined
# requests) is overwritten, not left in free pages. A batch's insert
# touches a random page of the id index per event, so its statement journal
# (kept only to undo that one statement) outgrows SQLite's in-memory spill
# size: with temp_store=MEMORY it never becomes a temporary file opened,
# written and unlinked for each batch (~20 % of the append's CPU at 32 a
# batch, bench.append_micro), and no page image lands in a temporary file.
# Nothing durable depends on it. A checkpoint every 10,000 pages (SQLite's
# default is 1,000) copies a page written by many batches (the id index's,
# the table's last) once instead of once every 1,000: ~3 us less an event
# (bench.append_micro, 40,000 events), for a log of up to ~40 MB.
PRAGMAS = (
    "PRAGMA synchronous=FULL",
    "PRAGMA secure_delete=ON",
    "PRAGMA temp_store=MEMORY",
    "PRAGMA wal_autocheckpoint=10000",
)


def open_sqlite(
    data_dir: Path, master: MasterKey | None = None
) -> tuple[EventStore, Quarantine, SQLiteFactory]:
    """The event store, its keys and the quarantine in DATA_DIR/events.sqlite;
    without `master`, the embedded default's DATA_DIR/master.key."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if master is None:
        master = embedded_master_key(data_dir)[0]
    path = str(data_dir / EVENTS_FILE)
    factory = SQLiteFactory(
        {
            "SQLITE_DBNAME": path,
            "SQLITE_LOCK_TIMEOUT": "10",
            "APPLICATION_RECORDER_TOPIC": f"{__name__}:KeyedRecorder",
        }
    )
    run_on_new_connections(factory.datastore, PRAGMAS)
    recorder = factory.application_recorder()
    assert isinstance(recorder, SQLiteApplicationRecorder)
    migrate_events(partial(factory.datastore.transaction, commit=True))
    keyring = Keyring(master, factory.datastore.transaction, KEY_TABLES)
    keyring.check_master()
    keyring.record_legacy_head(recorder.max_notification_id() or 0)
    quarantine = Quarantine(factory.datastore.transaction, DIALECT, keyring)
    index = SqlitePositionIndex(recorder, KEY_TABLES.key_meta)
    return EventStore(recorder, index, keyring), quarantine, factory
