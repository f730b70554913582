"""The PostgreSQL event store's schema history, oldest first, in the
deployment's schema.

The library's recorder makes its own `stored_events` table; these are the
tables of ours beside it. The read models' history is written once for
every backend in projections/stores/schema.py. Openings take turns under
an advisory lock (store.schema_lock).
"""

from __future__ import annotations

from typing import Any

from projections.stores.migrations import Migration, Transaction, migrate
from projections.stores.postgres import PostgresDialect

STORE = "events"


def migrations(schema: str) -> list[Migration]:
    t = PostgresDialect(schema).name

    def keys_and_quarantine(c: Any) -> None:
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {t('data_keys')} ("
            "customer_id TEXT PRIMARY KEY, key_id TEXT, wrapped BYTEA, "
            "master_id TEXT, erased_at TEXT)"
        )
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {t('key_meta')} "
            "(name TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {t('erasures')} (id BIGSERIAL PRIMARY KEY, "
            "customer_id TEXT NOT NULL, erased_at TEXT NOT NULL, "
            "events BIGINT NOT NULL)"
        )
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {t('quarantine')} ("
            "id BIGSERIAL PRIMARY KEY, received_at TEXT NOT NULL, "
            "reason TEXT NOT NULL, headers TEXT NOT NULL, body BYTEA NOT NULL, "
            "resolution TEXT)"
        )

    def quarantine_keys(c: Any) -> None:
        # Stores from before encryption have the table without these.
        for column in ("customer_id", "key_id"):
            c.execute(
                f"ALTER TABLE {t('quarantine')} ADD COLUMN IF NOT EXISTS {column} TEXT"
            )

    return [
        Migration(1, "data keys, erasures and the quarantine", keys_and_quarantine),
        Migration(2, "quarantined requests name customer and key", quarantine_keys),
    ]


def migrate_events(transaction: Transaction, schema: str) -> list[Migration]:
    dialect = PostgresDialect(schema)
    return migrate(
        transaction,
        dialect.name("schema_version"),
        dialect.p,
        STORE,
        migrations(schema),
    )
