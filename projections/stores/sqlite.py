"""SQLite connections for the read models: a file beside the event store.

A separate file from the events, so the ingress and the worker never wait
for each other's write lock. `synchronous=NORMAL` is enough here: in WAL mode
a crash can lose the newest transactions but never splits one, and the views
and their position always roll back together, to be re-applied from the
event store.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from projections.stores.answers import NO_ANSWERS, Answers
from projections.stores.sql import SqlReadModels
from projections.stores.writer import insert_values

CHECKPOINT_PAGES = 10_000  # of 4 KiB: a WAL file of up to about 40 MB
# Rows a bulk INSERT statement carries (a rebuild's staged rows and first
# customer rows). Multi-row VALUES bind the same parameters as executemany
# but step once a statement instead of once a row: a rebuild's staged
# history and ledger rows cost 0.90 -> 0.48 us an event. Every full chunk is
# the same SQL, so the connection's statement cache compiles it once.
BULK_ROWS = 500


class SqliteDialect:
    """SQLite's spelling, for every store in its files."""

    p = "?"
    blob = "BLOB"
    bigint = "INTEGER"
    # A write transaction holds the database's one write lock: writers
    # already take turns, and there are no row locks.
    for_update = ""
    for_share = ""
    # Narrow index-like tables: one B-tree instead of a table plus an index.
    clustered = " WITHOUT ROWID"

    def name(self, table: str) -> str:
        return table


class SqliteDb(SqliteDialect):
    missing_table_errors = (sqlite3.OperationalError,)

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            uri = self.path.startswith("file:")
            conn = sqlite3.connect(
                self.path,
                uri=uri,
                isolation_level=None,
                check_same_thread=False,
                timeout=30,
            )
            if "mode=memory" not in self.path:
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            # A checkpoint every 10,000 pages (SQLite's default: 1,000): it
            # copies a page once however often it was written since (the
            # B-trees' upper pages, the position row, busy customers' rows),
            # and the worker's commits cost about a quarter less CPU
            # (bench.projection_micro, batches of 32, 10,000 customers).
            conn.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
            # Deleted and overwritten rows (an erased customer's, an old
            # version of a state) are zeroed, not left in free pages.
            conn.execute("PRAGMA secure_delete=ON")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Cursor]:
        conn = self._conn()
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Cursor]:
        # Reads are single statements, each its own consistent snapshot in
        # autocommit mode: no BEGIN/ROLLBACK round trip around a point read.
        yield self._conn().cursor()

    def select(self, sql: str, params: Sequence[Any]) -> list[Any]:
        # `read` without the generator-based context manager, which cost a
        # point read (GetCustomer's) about 1 us.
        return self._conn().execute(sql, params).fetchall()

    def tune_for_bulk(self) -> None:
        """32 MiB of page cache (default 2 MiB) for this thread's connection:
        a rebuild inserts all over the history and ledger B-trees. Only the
        rebuild asks, so the service's other connections stay small. Its
        temporary files stay files: sorts and index builds of whole tables."""
        conn = self._conn()
        conn.execute("PRAGMA cache_size=-32768")
        conn.execute("PRAGMA temp_store=FILE")

    def tune_for_live(self) -> None:
        """Temporary storage in memory for this thread's connection (the
        live worker's). Each multi-row statement in a transaction keeps a
        statement journal, the pages it changes, to undo it alone: on disk
        that is a temporary file made, written page by page and deleted at
        every batch (a hundred writes a batch of 32 events); in memory the
        upsert of the customers cost about 40 % less CPU and the commit
        about 15 % (bench.projection_micro, batches of 32). A batch is at
        most `batch_size` events, so the journal stays a few MB; a
        rebuild's connection keeps files (`tune_for_bulk`), and so do the
        others (dropping a generation journals every page it frees)."""
        self._conn().execute("PRAGMA temp_store=MEMORY")

    def after_commit_sql(
        self, cursor: sqlite3.Cursor, generation: int, position: int
    ) -> None:
        pass  # one process: the worker tells its readers directly

    def bulk_insert(
        self,
        cursor: sqlite3.Cursor,
        table: str,
        columns: str,
        rows: Sequence[Sequence[Any]],
    ) -> None:
        insert_values(cursor, self.p, table, columns, rows, most=BULK_ROWS)

    def insert_rows(
        self,
        cursor: sqlite3.Cursor,
        table: str,
        columns: str,
        rows: Sequence[Sequence[Any]],
        suffix: str = "",
    ) -> None:
        insert_values(cursor, self.p, table, columns, rows, suffix)

    def merge_staged(
        self, cursor: sqlite3.Cursor, stage: str, final: str, columns: str, key: str
    ) -> None:
        # In key order: appends to the WITHOUT ROWID B-tree instead of inserts
        # all over it. `WHERE true` keeps SQLite from reading ON CONFLICT as a
        # join's ON.
        cursor.execute(
            f"INSERT INTO {final} ({columns}) SELECT {columns} FROM {stage} "
            f"WHERE true ORDER BY {key} ON CONFLICT DO NOTHING"
        )
        cursor.execute(f"DROP TABLE {stage}")

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


def open_sqlite_read_models(
    path: Path | str, answers: Answers = NO_ANSWERS
) -> SqlReadModels:
    if not str(path).startswith("file:"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    models = SqlReadModels(SqliteDb(path), answers)
    models.setup()
    return models
