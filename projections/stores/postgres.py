"""PostgreSQL connections for the read models, in the event store's schema."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool

from projections.stores.answers import NO_ANSWERS, Answers
from projections.stores.sql import SqlReadModels

APPLIED_CHANNEL = "loyalty_applied"


# The array type each read-model column travels as (insert_rows).
ARRAY_TYPES = {
    "customer_id": "text",
    "email_lower": "text",
    "email_key": "text",
    "tier": "text",
    "position": "bigint",
    "state": "bytea",
    "answer": "bytea",
    "created_us": "bigint",
    "event_id": "text",
    "entry": "text",
    "type_name": "text",
    "reason": "text",
}
# Rows a statement carries: a rebuild's flush writes many thousands at once.
ARRAY_ROWS = 10_000


class PostgresDialect:
    """PostgreSQL's spelling, for every store in the deployment's schema."""

    p = "%s"
    blob = "BYTEA"
    bigint = "BIGINT"
    for_update = " FOR UPDATE"
    for_share = " FOR SHARE"
    clustered = ""

    def __init__(self, schema: str) -> None:
        self.schema = schema

    def name(self, table: str) -> str:
        return f'"{self.schema}"."{table}"'


def schema_of(database_url: str) -> str:
    """The schema a URL names (`?schema=`), else `public`."""
    return parse_qs(urlsplit(database_url).query).get("schema", ["public"])[0]


class PostgresDb(PostgresDialect):
    missing_table_errors = (psycopg.errors.UndefinedTable,)

    def __init__(self, database_url: str, *, pool_size: int = 4) -> None:
        super().__init__(schema_of(database_url))
        self._inserts: dict[tuple[str, str, str], str] = {}
        # Inserts held back for the NOTIFY, by the write transaction's cursor.
        self._held: dict[int, list[tuple[str, list[Any]]]] = {}
        url = urlsplit(database_url)
        conninfo = urlunsplit(url._replace(query=""))
        self.pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            # Autocommit: `read` runs its one statement without a BEGIN and
            # a COMMIT around it; `write` opens its transaction explicitly.
            kwargs={"connect_timeout": 5, "autocommit": True},
            open=True,
            timeout=2,  # fail fast in an outage: callers answer UNAVAILABLE
        )
        with self.pool.connection() as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')

    @contextmanager
    def write(self) -> Iterator[Any]:
        with self.pool.connection() as conn, conn.transaction():
            cursor = conn.cursor()
            self._held[id(cursor)] = []
            try:
                yield cursor
                if self._held[id(cursor)]:  # no NOTIFY took them
                    self._send_held(cursor, "SELECT 1", ())
            finally:
                del self._held[id(cursor)]

    @contextmanager
    def read(self) -> Iterator[Any]:
        # Reads are single statements (as on SQLite), each its own snapshot:
        # a transaction around one would add two round trips (BEGIN, COMMIT)
        # and the server's work for them, and under READ COMMITTED give no
        # more consistency between statements anyway.
        with self.pool.connection() as conn:
            yield conn.cursor()

    def select(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self.pool.connection() as conn:
            return conn.execute(sql, params).fetchall()

    def tune_for_bulk(self) -> None:
        pass  # the server's own cache serves every connection

    def tune_for_live(self) -> None:
        pass  # nothing of the client's to tune

    def after_commit_sql(self, cursor: Any, generation: int, position: int) -> None:
        # Delivered on commit to API processes waiting on min_position; the
        # batch's inserts ride in the same statement.
        self._send_held(
            cursor,
            "SELECT pg_notify(%s, %s)",
            (APPLIED_CHANNEL, f"{self.schema}:{generation}:{position}"),
        )

    def _send_held(self, cursor: Any, last: str, params: Sequence[Any]) -> None:
        """`last`, with the inserts `insert_rows` held back as data-modifying
        WITH clauses before it: one statement instead of one a table. Each
        inserts into another table (or other rows of it), so their order,
        which PostgreSQL leaves open, changes nothing."""
        held = self._held.get(id(cursor))
        if not held:
            cursor.execute(last, params)
            return
        clauses = ", ".join(f"w{i} AS ({sql})" for i, (sql, _) in enumerate(held))
        values = [value for _, arrays in held for value in arrays]
        held.clear()
        cursor.execute(f"WITH {clauses} {last}", [*values, *params])

    def bulk_insert(
        self, cursor: Any, table: str, columns: str, rows: Sequence[Sequence[Any]]
    ) -> None:
        # COPY: one stream instead of a statement per row; several times
        # faster for a rebuild's million staged rows.
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def insert_rows(
        self,
        cursor: Any,
        table: str,
        columns: str,
        rows: Sequence[Sequence[Any]],
        suffix: str = "",
    ) -> None:
        # Each column as one array: the statement's text is the same for any
        # number of rows, so psycopg prepares it after a few batches and the
        # server plans it once, instead of parsing and planning a VALUES list
        # of a new length (a parameter a value) every batch.
        key = (table, columns, suffix)
        statement = self._inserts.get(key)
        if statement is None:
            arrays = ", ".join(
                f"%b::{ARRAY_TYPES[name.strip()]}[]" for name in columns.split(",")
            )
            statement = (
                f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays})"
                + suffix
            )
            self._inserts[key] = statement
        held = self._held.get(id(cursor))
        for start in range(0, len(rows), ARRAY_ROWS):
            chunk = rows[start : start + ARRAY_ROWS]
            columns_of = [list(c) for c in zip(*chunk, strict=True)]
            if held is not None and len(rows) <= ARRAY_ROWS:
                # Sent with the transaction's next statement of ours (the
                # NOTIFY), or at its end: nothing in between reads them.
                held.append((statement, columns_of))
            else:
                cursor.execute(statement, columns_of)

    def merge_staged(
        self, cursor: Any, stage: str, final: str, columns: str, key: str
    ) -> None:
        # The staged table becomes the final one and gets its key afterwards:
        # one sort to build the index, instead of copying a million rows into
        # a B-tree. (`final` was created empty with the same columns.)
        bare = final.rpartition(".")[2]
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cursor.execute(f"DROP TABLE {final}")
        cursor.execute(f"ALTER TABLE {stage} RENAME TO {bare}")
        cursor.execute(f"ALTER TABLE {final} ADD PRIMARY KEY ({key})")

    def close(self) -> None:
        self.pool.close()


def open_postgres_read_models(
    database_url: str, answers: Answers = NO_ANSWERS
) -> SqlReadModels:
    models = SqlReadModels(PostgresDb(database_url), answers)
    models.setup()
    return models
