"""The SQLite event store's schema history (events.sqlite), oldest first.

The library's recorder makes its own `stored_events` table; these are the
tables of ours beside it. The read models' history is written once for
every backend in projections/stores/schema.py.
"""

from __future__ import annotations

from typing import Any

from projections.stores.migrations import Migration, Transaction, migrate

STORE = "events"


def _columns(c: Any, table: str) -> set[str]:
    c.execute("SELECT name FROM pragma_table_info(?)", (table,))
    return {row[0] for row in c.fetchall()}


def _keys_and_quarantine(c: Any) -> None:
    c.execute(
        "CREATE TABLE IF NOT EXISTS data_keys (customer_id TEXT PRIMARY KEY, "
        "key_id TEXT, wrapped BLOB, master_id TEXT, erased_at TEXT)"
    )
    c.execute(
        "CREATE TABLE IF NOT EXISTS key_meta "
        "(name TEXT PRIMARY KEY, value TEXT NOT NULL)"
    )
    c.execute(
        "CREATE TABLE IF NOT EXISTS erasures "
        "(id INTEGER PRIMARY KEY AUTOINCREMENT, customer_id TEXT NOT NULL, "
        "erased_at TEXT NOT NULL, events BIGINT NOT NULL)"
    )
    c.execute(
        "CREATE TABLE IF NOT EXISTS quarantine ("
        "id INTEGER PRIMARY KEY AUTOINCREMENT, received_at TEXT NOT NULL, "
        "reason TEXT NOT NULL, headers TEXT NOT NULL, body BLOB NOT NULL, "
        "resolution TEXT)"
    )


def _quarantine_keys(c: Any) -> None:
    # Stores from before encryption have the table without these.
    missing = {"customer_id", "key_id"} - _columns(c, "quarantine")
    for column in sorted(missing):
        c.execute(f"ALTER TABLE quarantine ADD COLUMN {column} TEXT")


MIGRATIONS = [
    Migration(1, "data keys, erasures and the quarantine", _keys_and_quarantine),
    Migration(2, "quarantined requests name customer and key", _quarantine_keys),
]


def migrate_events(transaction: Transaction) -> list[Migration]:
    return migrate(transaction, "schema_version", "?", STORE, MIGRATIONS)
