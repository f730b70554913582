"""The batch writer: everything one applied batch writes to one generation,
each table with one statement per batch (multi-row VALUES)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from projections.stores.db import Db
from projections.stores.rows import Batch, CustomerRow, DeadLetter
from projections.stores.tables import (
    CUSTOMER_COLUMNS,
    HISTORY_COLUMNS,
    LEDGER_COLUMNS,
    STAGED,
    TABLES,
    chunks,
    create_indexes,
)
from projections.stores.tables import table as table_name

# Bound parameters a statement may carry: SQLite allows 32,766 (since
# 3.32), PostgreSQL 65,535. Batches of the live worker stay far below;
# a rebuild's staged rows (20,000 events a batch) take a few statements.
MAX_PARAMS = 30_000
DEAD_COLUMNS = "position, event_id, customer_id, type_name, reason"
# An upsert sets the columns that change with every event; tier and
# email_lower only where they differ from the stored row's (read with the
# states). A column in SQLite's SET list has its index entries rewritten
# even when its value stays, which cost about a fifth of an upsert; on
# PostgreSQL an update that changes no indexed column can stay on its page
# (HOT) without touching any index. A row inserted anew still gets every
# column from VALUES.
_ALWAYS = (
    "email_key = excluded.email_key, position = excluded.position, "
    "state = excluded.state, answer = excluded.answer"
)


def _upsert(*indexed: str) -> str:
    sets = [f"{column} = excluded.{column}" for column in indexed]
    return " ON CONFLICT (customer_id) DO UPDATE SET " + ", ".join([*sets, _ALWAYS])


# By (tier changed, email changed).
_UPSERTS = {
    (True, True): _upsert("tier", "email_lower"),
    (True, False): _upsert("tier"),
    (False, True): _upsert("email_lower"),
    (False, False): _upsert(),
}
Indexed = dict[str, tuple[str | None, str | None]]  # id -> stored (tier, email)


class StalePosition(RuntimeError):
    """Another applier moved this generation on; re-read and carry on."""


def insert_values(
    c: Any,
    p: str,
    table: str,
    columns: str,
    rows: Sequence[Sequence[Any]],
    suffix: str = "",
    most: int = MAX_PARAMS,
) -> None:
    """One multi-row INSERT for `rows` (several only past `most` rows or
    MAX_PARAMS parameters): a statement per batch instead of one per row."""
    width = columns.count(",") + 1
    one = "(" + ",".join([p] * width) + ")"
    for chunk in chunks(rows, min(most, MAX_PARAMS // width)):
        c.execute(
            f"INSERT INTO {table} ({columns}) VALUES "
            + ",".join([one] * len(chunk))
            + suffix,
            [value for row in chunk for value in row],
        )


class GenerationWriter:
    """Writes to one generation inside one transaction.

    Every writer first takes the generation's position row (advancing it, or
    just locking it), so writers of a generation are serialised: states are
    read and written back under that lock and no update is lost.
    """

    def __init__(self, db: Db, cursor: Any, g: int) -> None:
        self.db, self.c, self.g = db, cursor, g
        self._t = functools.partial(table_name, db, generation=g)
        self._position = 0
        self.p = db.p

    def advance(self, *, expected: int, to: int) -> None:
        """Move the position from `expected` to `to`, or raise StalePosition:
        a second applier (a standby that took over while we stalled) cannot
        apply the same events again."""
        self.c.execute(
            f"UPDATE {self.db.name('projection_position')} "
            f"SET position = {self.p} WHERE generation = {self.p} "
            f"AND position = {self.p}",
            (to, self.g, expected),
        )
        if self.c.rowcount != 1:
            raise StalePosition(f"generation {self.g} is no longer at {expected}")
        self._position = to

    def lock(self) -> int:
        """Serialise with the applier without moving the position."""
        self.c.execute(
            f"SELECT position FROM {self.db.name('projection_position')} "
            f"WHERE generation = {self.p}{self.db.for_update}",
            (self.g,),
        )
        row = self.c.fetchone()
        self._position = int(row[0]) if row else 0
        return self._position

    def load_states(
        self, ids: Sequence[str], indexed: Indexed | None = None
    ) -> dict[str, bytes]:
        """The stored states of `ids`; with `indexed`, their stored tier and
        email columns too (for `write`'s `indexed`)."""
        found: dict[str, bytes] = {}
        for chunk in chunks(ids, 500):
            marks = ",".join([self.p] * len(chunk))
            self.c.execute(
                f"SELECT customer_id, state, tier, email_lower "
                f"FROM {self._t('customers')} WHERE customer_id IN ({marks})",
                chunk,
            )
            rows = self.c.fetchall()
            found.update((r[0], bytes(r[1])) for r in rows)
            if indexed is not None:
                indexed.update((r[0], (r[2], r[3])) for r in rows)
        return found

    def take_dead_letter(self, position: int) -> DeadLetter | None:
        self.c.execute(
            f"DELETE FROM {self._t('dead_letters')} WHERE position = {self.p} "
            "RETURNING position, event_id, customer_id, type_name, reason",
            (position,),
        )
        row = self.c.fetchone()
        return DeadLetter(*row) if row else None

    def dismiss_dead_letter(self, position: int, note: str) -> bool:
        self.c.execute(
            f"UPDATE {self._t('dead_letters')} SET dismissed = {self.p} "
            f"WHERE position = {self.p} AND dismissed IS NULL RETURNING position",
            (note, position),
        )
        return self.c.fetchone() is not None

    def carry_dismissals(self, *, to: int) -> None:
        """Copy this generation's dismissal notes to the same events' dead
        letters in generation `to` (a position is one event)."""
        old, new = self._t("dead_letters"), table_name(self.db, "dead_letters", to)
        self.c.execute(
            f"UPDATE {new} SET dismissed = (SELECT o.dismissed FROM {old} o "
            f"WHERE o.position = {new}.position) WHERE dismissed IS NULL "
            f"AND position IN (SELECT position FROM {old} WHERE dismissed IS NOT NULL)"
        )

    def complete_rebuild(self) -> None:
        """Index a rebuild's customers, once their rows are in (after
        `merge_staged`): one sort each instead of a B-tree insert per row."""
        create_indexes(self.db, self.c, self.g)

    def merge_staged(self) -> None:
        """Move a rebuild's staged history and ledger rows into their tables,
        in key order, and drop the staging tables."""
        c, t, db = self.c, self._t, self.db
        db.merge_staged(
            c, t("history_stage"), t("history"), HISTORY_COLUMNS, HISTORY_COLUMNS
        )
        db.merge_staged(
            c,
            t("ledger_stage"),
            t("ledger"),
            LEDGER_COLUMNS,
            "customer_id, created_us, event_id",
        )

    def erase(self, customer_ids: Sequence[str], *, staged: bool = False) -> None:
        """Every row of these customers in this generation (their stored
        answers with their states), and in its staging tables during a
        rebuild."""
        tables = list(TABLES)
        if staged:
            tables += [f"{table}_stage" for table in STAGED]
        for table in tables:
            self.c.executemany(
                f"DELETE FROM {self._t(table)} WHERE customer_id = {self.p}",
                [(cid,) for cid in customer_ids],
            )

    def _write_customers(self, rows: Sequence[CustomerRow], indexed: Indexed) -> None:
        groups: dict[tuple[bool, bool], list[CustomerRow]] = {}
        for row in rows:
            stored = indexed.get(row.customer_id)
            key = (
                (True, True)
                if stored is None
                else (stored[0] != row.tier, stored[1] != row.email_lower)
            )
            groups.setdefault(key, []).append(row)
        table = self._t("customers")
        for key, group in groups.items():
            self.db.insert_rows(self.c, table, CUSTOMER_COLUMNS, group, _UPSERTS[key])

    def insert_customers(self, rows: Sequence[CustomerRow]) -> None:
        """The first customer rows of a rebuild's (empty) generation."""
        self.db.bulk_insert(self.c, self._t("customers"), CUSTOMER_COLUMNS, rows)

    def write(
        self,
        batch: Batch,
        *,
        staged: bool = False,
        indexed: Indexed | None = None,
    ) -> None:
        """Views, ledger, history and dead letters of a batch; with `staged`,
        history and ledger rows go to the rebuild's staging tables.
        `indexed` holds the tier and email columns stored now (read in this
        transaction) of customers whose row, if it still exists, has them."""
        c, g, db = self.c, self.g, self.db

        def t(name: str, generation: int) -> str:
            return table_name(db, name, generation)

        if batch.erased:
            self.erase(batch.erased, staged=staged)
        if batch.customers:
            self._write_customers(batch.customers, indexed or {})
        if staged:  # a rebuild's own tables: nothing to conflict with
            if batch.ledger:
                db.bulk_insert(c, t("ledger_stage", g), LEDGER_COLUMNS, batch.ledger)
            if batch.history:
                db.bulk_insert(c, t("history_stage", g), HISTORY_COLUMNS, batch.history)
        else:
            skip = " ON CONFLICT DO NOTHING"
            if batch.ledger:
                db.insert_rows(c, t("ledger", g), LEDGER_COLUMNS, batch.ledger, skip)
            if batch.history:
                db.insert_rows(c, t("history", g), HISTORY_COLUMNS, batch.history, skip)
        if batch.dead:
            db.insert_rows(
                c,
                t("dead_letters", g),
                DEAD_COLUMNS,
                [
                    (d.position, d.event_id, d.customer_id, d.type_name, d.reason)
                    for d in batch.dead
                ],
                " ON CONFLICT DO NOTHING",
            )
        self.db.after_commit_sql(c, g, self._position)
