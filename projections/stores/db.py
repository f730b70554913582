"""What a store needs of a database: its SQL spelling (Dialect), and for
the read models its connections (Db). One implementation of each per
backend (sqlite.py, postgres.py)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol


class Dialect(Protocol):
    """A backend's SQL spelling: the one every store of the backend uses
    (read models, keys, quarantine). One class per backend: SqliteDialect,
    PostgresDialect."""

    p: str  # parameter marker
    blob: str
    bigint: str
    for_update: str  # row-lock suffix for SELECT, "" where writers are serial
    for_share: str  # shared row-lock suffix for SELECT, "" likewise
    clustered: str  # table suffix that stores rows in primary-key order

    def name(self, table: str) -> str: ...  # qualified table name


class Db(Dialect, Protocol):
    """A backend's connections for the read models, in its SQL spelling."""

    @property
    def missing_table_errors(self) -> tuple[type[BaseException], ...]: ...

    def write(self) -> AbstractContextManager[Any]: ...  # cursor, commits on exit
    def read(self) -> AbstractContextManager[Any]: ...  # cursor
    def select(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """The rows of one statement, as `read` would run it."""

    def close(self) -> None: ...
    def tune_for_bulk(self) -> None:
        """Ready this thread's connection for a bulk load (a rebuild)."""

    def tune_for_live(self) -> None:
        """Ready this thread's connection for the live worker's batches."""

    def after_commit_sql(self, cursor: Any, generation: int, position: int) -> None:
        """Last statement of every view commit (e.g. a NOTIFY)."""

    def bulk_insert(
        self, cursor: Any, table: str, columns: str, rows: Sequence[Sequence[Any]]
    ) -> None:
        """Plain inserts (no conflicts possible) as fast as the backend can."""

    def insert_rows(
        self,
        cursor: Any,
        table: str,
        columns: str,
        rows: Sequence[Sequence[Any]],
        suffix: str = "",
    ) -> None:
        """INSERT `rows` (not empty) in as few statements as the backend
        allows; `suffix` is the statement's ON CONFLICT clause, if any."""

    def merge_staged(
        self, cursor: Any, stage: str, final: str, columns: str, key: str
    ) -> None:
        """Make `final` (empty, keyed by `key`) hold `stage`'s rows; `stage`
        is gone afterwards. Staged rows are unique by key: each is written
        once, by the one applier of a rebuild's generation."""
