"""The read models' schema history, written once for every backend over
its Db dialect (migrations.py applies it).

Only the tables every generation shares are here; a generation's own
tables are made by Generations.create_generation in the newest shape, and
a migration that changes that shape also changes the generations that
exist when it runs.
"""

from __future__ import annotations

from typing import Any

from projections.stores.db import Db
from projections.stores.migrations import Migration, migrate
from projections.stores.tables import create_indexes

STORE = "read_models"


def _columns(c: Any, table: str) -> set[str]:
    c.execute(f"SELECT * FROM {table} WHERE 1 = 0")
    return {d[0] for d in c.description}


def _generations(db: Db, c: Any) -> list[int]:
    c.execute(f"SELECT generation FROM {db.name('projection_position')}")
    return sorted(int(row[0]) for row in c.fetchall())


def migrations(db: Db) -> list[Migration]:
    big = db.bigint

    def meta_tables(c: Any) -> None:
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {db.name('projection_meta')} "
            f"(key TEXT PRIMARY KEY, value {big} NOT NULL)"
        )
        c.execute(
            f"CREATE TABLE IF NOT EXISTS {db.name('projection_position')} "
            f"(generation {big} PRIMARY KEY, position {big} NOT NULL)"
        )

    def stored_answers(c: Any) -> None:
        # Generations made before answers were stored (setup then makes
        # the answers: the recorded encoding differs).
        for g in _generations(db, c):
            customers = db.name(f"customers_{g}")
            if "answer" not in _columns(c, customers):
                c.execute(f"ALTER TABLE {customers} ADD COLUMN answer {db.blob}")

    def email_index_without_recency(c: Any) -> None:
        # A rebuild's pending generation gets its indexes when it completes.
        c.execute(
            f"SELECT value FROM {db.name('projection_meta')} WHERE key = 'pending'"
        )
        row = c.fetchone()
        pending = int(row[0]) if row else 0
        for g in _generations(db, c):
            c.execute(f"DROP INDEX IF EXISTS {db.name(f'customers_{g}_email')}")
            if g != pending:
                create_indexes(db, c, g)

    return [
        Migration(1, "the generations' meta and position tables", meta_tables),
        Migration(2, "customers keep their answer ready to send", stored_answers),
        Migration(
            3,
            "the customers' email index keys on the email alone",
            email_index_without_recency,
        ),
    ]


def migrate_read_models(db: Db) -> list[Migration]:
    """Bring the read models' shared tables to the newest version."""
    return migrate(db.write, db.name("schema_version"), db.p, STORE, migrations(db))
