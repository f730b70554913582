"""SQLite (the embedded default): the event store and quarantine in one file."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteFactory,
)

from projections.events import RecordedEvent
from service.eventstore import EventStore, PositionIndex, decode
from service.quarantine import Quarantine

QUARANTINE_DDL = (
    "CREATE TABLE IF NOT EXISTS quarantine ("
    "id INTEGER PRIMARY KEY AUTOINCREMENT, received_at TEXT NOT NULL, "
    "reason TEXT NOT NULL, headers TEXT NOT NULL, body BLOB NOT NULL, "
    "resolution TEXT)"
)
_CHUNK = 500  # well under SQLite's bound-parameter limit


class SqlitePositionIndex(PositionIndex):
    def __init__(self, recorder: SQLiteApplicationRecorder) -> None:
        self._recorder = recorder
        self._table = recorder.events_table_name

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
    ) -> list[tuple[int, str, bytes]]:
        sql = f"SELECT rowid, topic, state FROM {self._table} WHERE rowid > ?"
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
            return [(r[0], r[1], r[2]) for r in c.fetchall()]

    def ping(self) -> None:
        with self._recorder.datastore.transaction(commit=False) as c:
            c.execute("SELECT 1")

    def read_positions(self, positions: Sequence[int]) -> list[RecordedEvent]:
        events: list[RecordedEvent] = []
        with self._recorder.datastore.transaction(commit=False) as c:
            for i in range(0, len(positions), _CHUNK):
                chunk = positions[i : i + _CHUNK]
                c.execute(
                    f"SELECT rowid, topic, state FROM {self._table} "
                    f"WHERE rowid IN ({','.join('?' * len(chunk))}) ORDER BY rowid",
                    list(chunk),
                )
                events.extend(decode(r[0], r[1], r[2]) for r in c.fetchall())
        return sorted(events, key=lambda e: e.position)


class DurablePool(SQLiteConnectionPool):
    """Every connection commits with synchronous=FULL: in WAL mode a commit
    then survives power loss, not only a crash of the process. SQLite's
    compiled-in default is usually FULL, but a build may differ, and a 2xx
    promises durability."""

    def _create_connection(self) -> SQLiteConnection:
        conn = super()._create_connection()
        conn._sqlite_conn.execute("PRAGMA synchronous=FULL")
        return conn


def open_sqlite(data_dir: Path) -> tuple[EventStore, Quarantine, SQLiteFactory]:
    """The event store and quarantine in DATA_DIR/events.sqlite."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = str(data_dir / "events.sqlite")
    factory = SQLiteFactory({"SQLITE_DBNAME": path, "SQLITE_LOCK_TIMEOUT": "10"})
    factory.datastore.pool = DurablePool(db_name=path, lock_timeout=10)
    recorder = factory.application_recorder()
    assert isinstance(recorder, SQLiteApplicationRecorder)
    quarantine = Quarantine(
        factory.datastore.transaction, "?", QUARANTINE_DDL, "quarantine"
    )
    quarantine.create_table()
    return EventStore(recorder, SqlitePositionIndex(recorder)), quarantine, factory
