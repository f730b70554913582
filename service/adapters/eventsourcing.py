"""Every use of the `eventsourcing` library's internals, in one place.

The backends build on its application recorders through these names only.
Written for eventsourcing 9.5.6. On an upgrade, re-check (the tests in
tests/integration/test_library_adapters.py and the library's own recorder
test cases in tests/integration/test_recorder_cases.py fail when these
change):

- `SQLiteApplicationRecorder._insert_events(c, stored_events, **kwargs)` and
  `PostgresApplicationRecorder._insert_events(curs, stored_events, **kwargs)`
  are still called inside `insert_events`' transaction with its keyword
  arguments (on PostgreSQL before the table lock is taken);
- the PostgreSQL recorder's `insert_events`, `select_notifications` and
  `max_notification_id` are still wrapped by `@retry` (functools.wraps, so
  `__wrapped__` is the undecorated method);
- `SQLiteConnectionPool._create_connection` still returns a
  `SQLiteConnection` whose `_sqlite_conn` is the sqlite3 connection, and
  `SQLiteDatastore.pool` is still the one pool every transaction uses;
- the PostgreSQL recorder still NOTIFYs `channel_name` on every insert;
- `PostgresApplicationRecorder._insert_stored_events(curs, stored_events)`
  still takes the table lock (`_lock_table`), then NOTIFYs
  (`_notify_channel`), then runs `insert_events_statement` (the four
  columns from an array, RETURNING notification_id), whose rows
  `_fetch_ids_after_insert_events` reads: `HookedPostgresRecorder` does the
  same in one statement of its own (the NOTIFY, with "schema:head" as its
  payload, inside it), and reads the ids back itself (`problems` compares
  the source);
- `PostgresDatastore.pool` is a psycopg_pool `ConnectionPool` (3.3.3) that
  calls its `_check` attribute, when set, on every checkout (the library
  sets it to `check_connection` with `POSTGRES_PRE_PING`):
  `ping_when_idle` replaces it.
"""

from __future__ import annotations

import inspect
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import version
from typing import Any, TypeVar

from eventsourcing.persistence import ProgrammingError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteDatastore,
)
from psycopg.sql import SQL, Identifier
from psycopg_pool import ConnectionPool

WRITTEN_FOR = "9.5.6"
_F = TypeVar("_F", bound=Callable[..., Any])
# The body of the library's PostgresApplicationRecorder._insert_stored_events
# this module replaces: the lock, the NOTIFY, then the insert.
LIBRARY_INSERT_STEPS = (
    "self._lock_table(curs)",
    "self._notify_channel(curs)",
    "super()._insert_stored_events(curs, stored_events, **kwargs)",
)


def problems() -> list[str]:
    """What differs from the library this module was written for."""
    found = []
    installed = version("eventsourcing")
    if installed != WRITTEN_FOR:
        found.append(
            f"eventsourcing {installed} installed, adapters written for "
            f"{WRITTEN_FOR}: re-check service/adapters/eventsourcing.py"
        )
    for cls in (SQLiteApplicationRecorder, PostgresApplicationRecorder):
        if not callable(getattr(cls, "_insert_events", None)):
            found.append(f"{cls.__name__}._insert_events is gone")
    for name in ("insert_events", "select_notifications", "max_notification_id"):
        if not hasattr(getattr(PostgresApplicationRecorder, name), "__wrapped__"):
            found.append(f"PostgresApplicationRecorder.{name} has no @retry wrapper")
    if not callable(getattr(SQLiteConnectionPool, "_create_connection", None)):
        found.append("SQLiteConnectionPool._create_connection is gone")
    found += _postgres_insert_problems()
    if "self._check(conn)" not in inspect.getsource(ConnectionPool._check_connection):
        found.append("psycopg_pool's ConnectionPool no longer calls `_check`")
    return found


def _postgres_insert_problems() -> list[str]:
    cls = PostgresApplicationRecorder
    body = [
        line.strip()
        for line in inspect.getsource(cls._insert_stored_events).splitlines()
    ]
    steps = [line for line in body if line.startswith(("self.", "super()."))]
    found = []
    if tuple(steps) != LIBRARY_INSERT_STEPS:
        found.append(f"{cls.__name__}._insert_stored_events does {steps}")
    for name in ("_lock_table", "_notify_channel", "_fetch_ids_after_insert_events"):
        if not callable(getattr(cls, name, None)):
            found.append(f"{cls.__name__}.{name} is gone")
    source = inspect.getsource(cls.__init__)
    if 'insert_events_statement += SQL(" RETURNING notification_id")' not in source:
        found.append(f"{cls.__name__} no longer inserts RETURNING notification_id")
    return found


def without_retries(method: _F) -> _F:
    """The library method under its `@retry` decorator: the caller gives up
    at once and answers for itself (a 503, UNAVAILABLE) instead of waiting
    through the library's attempts."""
    inner: _F = method.__wrapped__  # type: ignore[attr-defined]
    return inner


class HookedSqliteRecorder(SQLiteApplicationRecorder):
    """The library's SQLite recorder with one public hook: `insert_rows`
    runs inside `insert_events`' transaction and receives its keyword
    arguments, so work of ours commits with the events or not at all."""

    def _insert_events(
        self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return self.insert_rows(c, stored_events, kwargs)

    def insert_rows(
        self, c: Any, stored_events: Sequence[StoredEvent], options: Mapping[str, Any]
    ) -> Sequence[int] | None:
        """Insert the events in transaction `c`; returns their notification
        ids. The library's own insert unless a subclass says otherwise."""
        return super()._insert_events(c, stored_events)


class HookedPostgresRecorder(PostgresApplicationRecorder):
    """The library's PostgreSQL recorder with one public hook:
    `before_insert` runs inside `insert_events`' transaction, before the
    table lock, with its keyword arguments. Its insert sends typed arrays
    (`_insert_stored_events`), also callable on its own (`insert_rows`)."""

    def _insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        self.before_insert(curs, kwargs)

    def before_insert(self, curs: Any, options: Mapping[str, Any]) -> None:
        """Work of ours in the insert's transaction; nothing by default."""

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        # The library's steps (the table lock first, so notification ids
        # commit in the order they are drawn; the insert, RETURNING
        # notification_id in the batch's order; a NOTIFY), but the rows
        # travel as four typed arrays in binary, not as one array of a
        # composite type in text, which costs more CPU on both sides
        # (docs/performance.md, "The append's steps"), and the NOTIFY rides
        # in the insert's statement with the new head as its payload.
        self._lock_table(curs)
        self._send_rows(curs, stored_events)

    def insert_rows(self, curs: Any, stored_events: Sequence[StoredEvent]) -> list[int]:
        """The same insert in a transaction of the caller's (not in pipeline
        mode); returns the notification ids. For measuring its steps."""
        self._lock_table(curs)
        self._send_rows(curs, stored_events)
        return self._fetch_ids_after_insert_events(curs, stored_events)

    def _fetch_ids_after_insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **_: Any
    ) -> list[int]:
        # The library's, but `_insert_columns` is a SELECT over the insert
        # (the library asserts an INSERT's status): one id a row, checked.
        ids = [row["notification_id"] for row in curs.fetchall()]
        if len(ids) != len(stored_events):
            raise ProgrammingError(
                f"got {len(ids)} notification ids for {len(stored_events)} events"
            )
        return ids

    def _send_rows(self, curs: Any, stored_events: Sequence[StoredEvent]) -> None:
        columns: tuple[list[Any], list[int], list[str], list[bytes]] = (
            [], [], [], []
        )  # fmt: skip
        ids, versions, topics, states = columns
        for s in stored_events:
            ids.append(s.originator_id)
            versions.append(s.originator_version)
            topics.append(s.topic)
            states.append(s.state)
        curs.execute(
            self._insert_columns(),
            (*columns, self.channel_name, f"{self.datastore.schema}:"),
            prepare=True,
            binary=True,
        )

    def _insert_columns(self) -> Any:
        """One statement: the rows inserted, the NOTIFY (a listener learns
        the head from it, no query: the table lock makes the batch's largest
        id the head; the payload names the schema too, because the library's
        channel is the table's name, shared by every schema of a database),
        and the ids back in the batch's order (the sequence
        draws them in the order of the rows). A NOTIFY of its own after the
        insert would cost a statement, and in pipeline mode a refused
        insert would then surface as "pipeline aborted", not as the
        duplicate key it is."""
        statement = getattr(self, "_insert_columns_statement", None)
        if statement is None:
            ds = self.datastore
            statement = SQL(
                "WITH ins AS (INSERT INTO {schema}.{table} "
                "(originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(%b::{id_type}[], %b::bigint[], %b::text[], "
                "%b::bytea[]) RETURNING notification_id), "
                "told AS (SELECT pg_notify(%b, %b || max(notification_id)::text) "
                "FROM ins) "
                "SELECT ins.notification_id FROM ins, told "
                "ORDER BY ins.notification_id"
            ).format(
                schema=Identifier(ds.schema),
                table=Identifier(self.events_table_name),
                id_type=Identifier(ds.originator_id_type),
            )
            self._insert_columns_statement = statement
        return statement


def notify_channel(recorder: object) -> str:
    """The channel a PostgreSQL recorder NOTIFYs on every insert ("" for a
    recorder that does not)."""
    return str(getattr(recorder, "channel_name", ""))


def notified_head(payload: str) -> tuple[str | None, int | None]:
    """(schema, head) a NOTIFY of `notify_channel` says: "schema:head" from
    `HookedPostgresRecorder`. (None, None) for one that says neither: the
    library's own (empty), or the bare head an earlier version sent, which
    may be any schema's."""
    schema, colon, head = payload.rpartition(":")
    if colon and head.isdigit():
        return schema, int(head)
    return None, None


def run_on_new_connections(
    datastore: SQLiteDatastore, statements: Sequence[str]
) -> None:
    """Make every connection the datastore opens from now on run
    `statements` first (PRAGMAs the library does not set)."""
    old = datastore.pool

    class Pool(SQLiteConnectionPool):
        def _create_connection(self) -> SQLiteConnection:
            conn = super()._create_connection()
            for statement in statements:
                conn._sqlite_conn.execute(statement)
            return conn

    datastore.pool = Pool(db_name=old.db_name, lock_timeout=old.lock_timeout)
    old.close()


def ping_when_idle(datastore: PostgresDatastore, idle: float) -> None:
    """Ping a pooled connection on checkout only when it has not been
    checked out for `idle` seconds, instead of on every checkout: a busy
    process checks out several times a batch, and each ping is a round trip
    with CPU on both sides. A connection lent out within `idle` was working
    then; one that broke since fails in use like one that breaks mid-use,
    which every caller handles already (a 503, UNAVAILABLE, a retry), and
    the pool then discards it. The pings a restart would need happen after
    any quiet second."""
    pool = datastore.pool
    if not isinstance(pool, ConnectionPool):
        raise TypeError(f"not a psycopg_pool ConnectionPool: {type(pool)}")
    lent: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    def check(conn: Any) -> None:
        now = time.monotonic()
        if conn.broken or now - lent.get(conn, -idle) >= idle:
            ConnectionPool.check_connection(conn)
        lent[conn] = now

    pool._check = check
