"""PostgreSQL (production): the event store and quarantine in one schema."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from psycopg import sql

from projections.stores.postgres import PostgresDialect
from service.adapters.eventsourcing import (
    HookedPostgresRecorder,
    ping_when_idle,
    without_retries,
)
from service.backends.postgres.schema import migrate_events
from service.eventstore import EventStore
from service.keyring import Keyring, KeyTables
from service.masterkey import MasterKey
from service.quarantine import Quarantine
from service.storedevents import Row

# Seconds a pooled connection may sit unused before its next checkout pings
# it (the library's pre-ping would ping on every checkout).
PING_IDLE = 1.0


class FailFastRecorder(HookedPostgresRecorder):
    """The library's recorder without its built-in retries (10 tries, seconds
    each, while the database is down). A webhook should get its 503 at once,
    so the sender retries on its own schedule; the worker and the API have
    their own back-off and answer UNAVAILABLE."""

    insert_events = without_retries(PostgresApplicationRecorder.insert_events)
    select_notifications = without_retries(
        PostgresApplicationRecorder.select_notifications
    )
    max_notification_id = without_retries(
        PostgresApplicationRecorder.max_notification_id
    )

    def before_insert(self, curs: Any, options: Mapping[str, Any]) -> None:
        """Work of ours in the insert's transaction, before the library locks
        the table: an erasure's key destruction (`erase`), or the check that
        the batch's data keys are still live, which also share-locks their
        rows so an erasure waits for the batch (`verify`)."""
        for step in ("erase", "verify"):
            if (work := options.get(step)) is not None:
                work(curs)


def key_tables(dialect: PostgresDialect) -> KeyTables:
    # A rotation waits for writers holding key rows and blocks new ones
    # (readers go on).
    lock = f"LOCK TABLE {dialect.name('data_keys')} IN EXCLUSIVE MODE"
    return KeyTables.of(dialect, write_lock=lock)


def library_env(database_url: str, pool_size: int = 5) -> dict[str, str]:
    """The eventsourcing library's settings for a postgresql:// URL.

    A `schema` query parameter puts every table in that schema (tests use a
    fresh schema each, so runs never collide)."""
    url = urlsplit(database_url)
    query = parse_qs(url.query)
    return {
        "POSTGRES_DBNAME": unquote(url.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        "POSTGRES_SCHEMA": query.get("schema", ["public"])[0],
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        # Short: while the database is down, every attempt waits this long, and
        # the library retries a few times before the ingress can answer 503.
        "POSTGRES_CONNECT_TIMEOUT": "2",
        "POSTGRES_PRE_PING": "y",
        # Fail fast instead of queueing forever behind a dead server: the
        # ingress answers 503 and the sender retries.
        "POSTGRES_MAX_WAITING": "0",
        "POSTGRES_LOCK_TIMEOUT": "10",
        "APPLICATION_RECORDER_TOPIC": f"{__name__}:FailFastRecorder",
    }


def conninfo(env: dict[str, str]) -> str:
    return psycopg.conninfo.make_conninfo(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"] or None,
        connect_timeout=env["POSTGRES_CONNECT_TIMEOUT"],
    )


@contextlib.contextmanager
def schema_lock(database_url: str) -> Iterator[None]:
    """Processes started together on an empty database would race to create
    the same tables and types (PostgreSQL has no IF NOT EXISTS for types);
    they take turns instead."""
    env = library_env(database_url)
    with psycopg.connect(conninfo(env), autocommit=True) as conn:
        key = f"loyalty-schema:{env['POSTGRES_SCHEMA']}"
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))


def ensure_schema(env: dict[str, str]) -> None:
    with psycopg.connect(conninfo(env), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(env["POSTGRES_SCHEMA"])
            )
        )


class PostgresPositionIndex:
    def __init__(
        self, recorder: PostgresApplicationRecorder, dsn: str, key_meta: str
    ) -> None:
        self._recorder = recorder
        self._dsn = dsn
        table = sql.Identifier(recorder.datastore.schema, recorder.events_table_name)
        self._table = table
        # The key epoch (service/livekeys.py) as a column of the scan, in the
        # rows' snapshot: an InitPlan, evaluated once a statement. `key_meta`
        # is the dialect's quoted name.
        self._epoch = sql.SQL(
            f", (SELECT value FROM {key_meta} WHERE name = 'key_epoch') AS epoch"
        )
        self._by_ids = sql.SQL(
            "SELECT originator_id, notification_id FROM {} "
            "WHERE originator_id = ANY(%s)"
        ).format(table)
        self._by_positions = sql.SQL(
            "SELECT notification_id, topic, state FROM {} "
            "WHERE notification_id = ANY(%s) ORDER BY notification_id"
        ).format(table)

    def _select(self, query: sql.Composed, params: Sequence[object]) -> list[Any]:
        """One SELECT, outside a transaction block: the pool's connections
        are in autocommit, and a single statement sees one snapshot anyway,
        so a BEGIN and a ROLLBACK (two more round trips, and the server's
        work for each) would buy nothing."""
        with self._recorder.datastore.get_connection() as conn:
            return list(conn.execute(query, params).fetchall())

    def positions(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        rows = self._select(self._by_ids, (list(ids),))
        return {row["originator_id"]: row["notification_id"] for row in rows}

    def scan(
        self, after: int, limit: int, topics: Sequence[str], until: int | None
    ) -> tuple[list[Row], str | None]:
        where = [sql.SQL("notification_id > %s")]
        params: list[object] = [after]
        if until is not None:
            where.append(sql.SQL("notification_id <= %s"))
            params.append(until)
        if topics:
            where.append(sql.SQL("topic = ANY(%s)"))
            params.append(list(topics))
        query = sql.SQL(
            "SELECT notification_id, topic, state{} FROM {} WHERE {} "
            "ORDER BY notification_id LIMIT %s"
        ).format(self._epoch, self._table, sql.SQL(" AND ").join(where))
        params.append(limit)
        found = self._select(query, params)
        rows = [(r["notification_id"], r["topic"], bytes(r["state"])) for r in found]
        return rows, found[0]["epoch"] if found else None

    def ping(self) -> None:
        # A fresh connection, not the pool: the pool would wait and the
        # library would retry; health checks want a quick, honest answer.
        with psycopg.connect(self._dsn, connect_timeout=1) as conn:
            conn.execute("SELECT 1")

    def read_positions(self, positions: Sequence[int]) -> list[Row]:
        rows = self._select(self._by_positions, (list(positions),))
        return [(r["notification_id"], r["topic"], bytes(r["state"])) for r in rows]

    def states_in(self, c: Any, positions: Sequence[int]) -> list[Row]:
        c.execute(self._by_positions, (list(positions),))
        return [
            (r["notification_id"], r["topic"], bytes(r["state"])) for r in c.fetchall()
        ]

    def rewrite_states(self, c: Any, states: Sequence[tuple[int, bytes]]) -> None:
        statement = sql.SQL(
            "UPDATE {} SET state = %s WHERE notification_id = %s"
        ).format(self._table)
        for position, state in states:
            c.execute(statement, (state, position))

    @contextlib.contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Any]:
        with self._recorder.datastore.transaction(commit=commit) as c:
            yield c


def open_postgres(
    database_url: str, master: MasterKey, pool_size: int = 5
) -> tuple[EventStore, Quarantine, PostgresFactory]:
    env = library_env(database_url, pool_size)
    ensure_schema(env)
    factory = PostgresFactory(env)
    ping_when_idle(factory.datastore, PING_IDLE)
    recorder = factory.application_recorder()
    assert isinstance(recorder, PostgresApplicationRecorder)
    schema = factory.datastore.schema
    migrate_events(partial(factory.datastore.transaction, commit=True), schema)
    dialect = PostgresDialect(schema)
    tables = key_tables(dialect)
    keyring = Keyring(
        master, factory.datastore.transaction, tables, read=factory.datastore.cursor
    )
    keyring.check_master()
    keyring.record_legacy_head(recorder.max_notification_id() or 0)
    quarantine = Quarantine(factory.datastore.transaction, dialect, keyring)
    index = PostgresPositionIndex(recorder, conninfo(env), tables.key_meta)
    return EventStore(recorder, index, keyring), quarantine, factory
