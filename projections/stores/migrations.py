"""Numbered schema migrations, applied in order, with the version each
store has reached recorded in the store itself.

A store records its version in a `schema_version` table (one row per
store, so stores sharing a database keep theirs apart). Opening a store
applies every migration above its version, each in its own transaction
with the new version, so a crash leaves it at a version it fully has. A
store written before versions were recorded is at version 0: the first
migrations create what they find missing rather than assume an empty
database. A store at a version above this build's newest was written by a
newer build; it is refused rather than guessed at.

Processes opening one store at once take turns per migration: each
re-reads the version under the write lock before applying (PostgreSQL
openings also take turns as a whole, under an advisory lock).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

Transaction = Callable[[], AbstractContextManager[Any]]  # a committing cursor


@dataclass(frozen=True)
class Migration:
    version: int
    does: str  # what a reader of the history needs to know, one line
    apply: Callable[[Any], None]  # runs in the migration's transaction


class SchemaTooNew(RuntimeError):
    """The store was migrated by a newer build than this one."""


def _value(row: Any) -> int:
    # Tuples (sqlite3, psycopg's default), mappings (the library's rows).
    try:
        return int(row["version"])
    except (TypeError, IndexError, KeyError):
        return int(row[0])


def current_version(transaction: Transaction, table: str, p: str, store: str) -> int:
    """The store's recorded version (0: none recorded yet)."""
    with transaction() as c:
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {table} "
            "(store TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
        c.execute(f"SELECT version FROM {table} WHERE store = {p}", (store,))
        row = c.fetchone()
    return 0 if row is None else _value(row)


def migrate(
    transaction: Transaction,
    table: str,
    p: str,
    store: str,
    migrations: Sequence[Migration],
) -> list[Migration]:
    """Bring `store` to the newest version; returns the migrations applied.
    `table` is the version table's (qualified) name, `p` the parameter
    marker of the backend."""
    numbers = [m.version for m in migrations]
    if numbers != list(range(1, len(migrations) + 1)):
        raise ValueError(f"migrations of {store} must be numbered 1..n: {numbers}")
    version = current_version(transaction, table, p, store)
    if version > len(migrations):
        raise SchemaTooNew(
            f"the {store} store is at schema version {version}, and this build "
            f"knows versions up to {len(migrations)}: run a newer build"
        )
    applied = []
    for m in migrations[version:]:
        with transaction() as c:
            # A write first, so the transaction holds the write lock before
            # it reads (SQLite); then the version again: another process
            # may have applied this migration since we looked.
            c.execute(
                f"INSERT INTO {table} (store, version) VALUES ({p}, 0) "
                "ON CONFLICT (store) DO NOTHING",
                (store,),
            )
            c.execute(f"SELECT version FROM {table} WHERE store = {p}", (store,))
            if _value(c.fetchone()) >= m.version:
                continue
            m.apply(c)
            c.execute(
                f"UPDATE {table} SET version = {p} WHERE store = {p}",
                (m.version, store),
            )
        applied.append(m)
    return applied
