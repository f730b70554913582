"""PostgreSQL connections for the read models, in the event store's schema."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool

from projections.stores.sql import SqlReadModels


class PostgresDb:
    p = "%s"
    blob = "BYTEA"
    bigint = "BIGINT"
    missing_table_errors = (psycopg.errors.UndefinedTable,)

    def __init__(self, database_url: str, *, pool_size: int = 4) -> None:
        url = urlsplit(database_url)
        self.schema = parse_qs(url.query).get("schema", ["public"])[0]
        conninfo = urlunsplit(url._replace(query=""))
        self.pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            kwargs={"connect_timeout": 5},
            open=True,
            timeout=10,
        )
        with self.pool.connection() as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')

    @contextmanager
    def write(self) -> Iterator[Any]:
        with self.pool.connection() as conn, conn.transaction():
            yield conn.cursor()

    @contextmanager
    def read(self) -> Iterator[Any]:
        with self.pool.connection() as conn, conn.transaction():
            yield conn.cursor()

    def name(self, table: str) -> str:
        return f'"{self.schema}"."{table}"'

    def close(self) -> None:
        self.pool.close()


def open_postgres_read_models(database_url: str) -> SqlReadModels:
    models = SqlReadModels(PostgresDb(database_url))
    models.setup()
    return models
