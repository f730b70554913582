"""Read models in SQL tables, one set per generation, shared by every backend.

A generation is a complete set of read-model tables with its own applied
position. The live worker writes the current generation; a rebuild fills a
fresh one from position 0 and is switched in atomically when complete, so
readers keep reading the old tables until then.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from projections.customer.points import LedgerEntry
from projections.stores.rows import Batch, CustomerRow, DeadLetter, ledger_entry

# Tables a rebuild fills through a staging twin (see begin_rebuild).
STAGED = ("history", "ledger")
LEDGER_COLUMNS = "customer_id, created_us, event_id, position, entry"
CUSTOMER_COLUMNS = "customer_id, email_lower, email_key, tier, position, state"


def _customer_values(rows: Sequence[CustomerRow]) -> list[tuple[Any, ...]]:
    """CustomerRows as parameter tuples, in CUSTOMER_COLUMNS order."""
    return [
        (r.customer_id, r.email_lower, r.email_key, r.tier, r.position, r.state)
        for r in rows
    ]


class StalePosition(RuntimeError):
    """Another applier moved this generation on; re-read and carry on."""


class Db(Protocol):
    """A backend's connections and SQL spelling."""

    p: str  # parameter marker
    blob: str
    bigint: str

    @property
    def missing_table_errors(self) -> tuple[type[BaseException], ...]: ...

    for_update: str  # row-lock suffix for SELECT, "" where writers are serial
    clustered: str  # table suffix that stores rows in primary-key order

    def write(self) -> AbstractContextManager[Any]: ...  # cursor, commits on exit
    def read(self) -> AbstractContextManager[Any]: ...  # cursor
    def name(self, table: str) -> str: ...  # qualified table name
    def close(self) -> None: ...
    def tune_for_bulk(self) -> None:
        """Ready this thread's connection for a bulk load (a rebuild)."""

    def after_commit_sql(self, cursor: Any, generation: int, position: int) -> None:
        """Last statement of every view commit (e.g. a NOTIFY)."""

    def bulk_insert(
        self, cursor: Any, table: str, columns: str, rows: Sequence[Sequence[Any]]
    ) -> None:
        """Plain inserts (no conflicts possible) as fast as the backend can."""

    def merge_staged(
        self, cursor: Any, stage: str, final: str, columns: str, key: str
    ) -> None:
        """Make `final` (empty, keyed by `key`) hold `stage`'s rows; `stage`
        is gone afterwards. Staged rows are unique by key: each is written
        once, by the one applier of a rebuild's generation."""


class SqlReadModels:
    """All reads and writes of the read models; no fold logic."""

    GENERATION_TTL = 1.0  # seconds a reader trusts its cached generation

    def __init__(self, db: Db) -> None:
        self.db = db
        self._generation = 0
        self._generation_read_at = 0.0
        self._statements: dict[tuple[str, str, int], str] = {}

    # -- schema and generations ------------------------------------------------

    def setup(self) -> None:
        """Create the meta tables and the first generation if missing."""
        meta, pos = self.db.name("projection_meta"), self.db.name("projection_position")
        with self.db.write() as c:
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {meta} "
                f"(key TEXT PRIMARY KEY, value {self.db.bigint} NOT NULL)"
            )
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {pos} (generation {self.db.bigint} "
                f"PRIMARY KEY, position {self.db.bigint} NOT NULL)"
            )
        if self.current_generation(refresh=True) == 0:
            self.create_generation(1)
            with self.db.write() as c:
                self._set_meta(c, "current", 1)
            self._generation = 1

    def _set_meta(self, c: Any, key: str, value: int) -> None:
        p = self.db.p
        c.execute(
            f"INSERT INTO {self.db.name('projection_meta')} (key, value) "
            f"VALUES ({p}, {p}) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _meta(self, key: str) -> int:
        with self.db.read() as c:
            return self._meta_in(c, key)

    def _meta_in(self, c: Any, key: str) -> int:
        """A meta value as the transaction of cursor `c` sees it."""
        c.execute(
            f"SELECT value FROM {self.db.name('projection_meta')} "
            f"WHERE key = {self.db.p}",
            (key,),
        )
        row = c.fetchone()
        return int(row[0]) if row else 0

    def current_generation(self, *, refresh: bool = False) -> int:
        now = time.monotonic()
        if refresh or now - self._generation_read_at > self.GENERATION_TTL:
            self._generation = self._meta("current")
            self._generation_read_at = now
        return self._generation

    def pending_generation(self) -> int:
        return self._meta("pending")

    def _t(self, table: str, generation: int) -> str:
        return self.db.name(f"{table}_{generation}")

    def create_generation(self, g: int, *, indexes: bool = True) -> None:
        """The tables of generation `g`; a rebuild asks for the customers'
        secondary indexes later (create_indexes), once the rows are in."""
        t, blob, big = self._t, self.db.blob, self.db.bigint
        with self.db.write() as c:
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {t('customers', g)} ("
                "customer_id TEXT PRIMARY KEY, email_lower TEXT, email_key TEXT, "
                f"tier TEXT, position {big} NOT NULL, state {blob} NOT NULL)"
            )
            if indexes:
                self.create_indexes(c, g)
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {t('ledger', g)} ("
                f"customer_id TEXT NOT NULL, created_us {big} NOT NULL, "
                f"event_id TEXT NOT NULL, position {big} NOT NULL, "
                "entry TEXT NOT NULL, "
                f"PRIMARY KEY (customer_id, created_us, event_id)){self.db.clustered}"
            )
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {t('history', g)} ("
                f"customer_id TEXT NOT NULL, position {big} NOT NULL, "
                f"PRIMARY KEY (customer_id, position)){self.db.clustered}"
            )
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {t('dead_letters', g)} ("
                f"position {big} PRIMARY KEY, event_id TEXT NOT NULL, "
                "customer_id TEXT NOT NULL, type_name TEXT NOT NULL, "
                "reason TEXT NOT NULL, dismissed TEXT)"
            )
            c.execute(
                f"INSERT INTO {self.db.name('projection_position')} "
                f"(generation, position) VALUES ({self.db.p}, 0) "
                "ON CONFLICT (generation) DO NOTHING",
                (g,),
            )

    def create_indexes(self, c: Any, g: int) -> None:
        c.execute(
            f"CREATE INDEX IF NOT EXISTS customers_{g}_email "
            f"ON {self._t('customers', g)} (email_lower, email_key)"
        )
        c.execute(
            f"CREATE INDEX IF NOT EXISTS customers_{g}_tier "
            f"ON {self._t('customers', g)} (tier, customer_id)"
        )

    def drop_generation(self, g: int) -> None:
        with self.db.write() as c:
            for table in ("customers", "ledger", "history", "dead_letters"):
                c.execute(f"DROP TABLE IF EXISTS {self._t(table, g)}")
            for table in STAGED:
                c.execute(f"DROP TABLE IF EXISTS {self._t(table + '_stage', g)}")
            c.execute(
                f"DELETE FROM {self.db.name('projection_position')} "
                f"WHERE generation = {self.db.p}",
                (g,),
            )

    def begin_rebuild(self) -> int:
        """A fresh, empty generation, recorded as pending."""
        stale = self.pending_generation()
        if stale:
            self.drop_generation(stale)
        g = max(self.current_generation(refresh=True), stale) + 1
        self.drop_generation(g)
        self.create_generation(g, indexes=False)
        t, big = self._t, self.db.bigint
        with self.db.write() as c:
            # Unindexed, append-only twins of the history and ledger tables:
            # a rebuild appends here and merges once, in key order, at the end
            # (GenerationWriter.complete_rebuild) instead of inserting all over
            # two growing B-trees batch after batch.
            c.execute(
                f"CREATE TABLE {t('history_stage', g)} ("
                f"customer_id TEXT NOT NULL, position {big} NOT NULL)"
            )
            c.execute(
                f"CREATE TABLE {t('ledger_stage', g)} ("
                f"customer_id TEXT NOT NULL, created_us {big} NOT NULL, "
                f"event_id TEXT NOT NULL, position {big} NOT NULL, "
                "entry TEXT NOT NULL)"
            )
            self._set_meta(c, "pending", g)
        return g

    def switch_to(self, g: int) -> int:
        """Make generation `g` the one readers see; returns the old one.
        Dead letters an operator dismissed stay dismissed: a rebuild
        dead-letters the same events again (the fold still refuses them)."""
        old = self.current_generation(refresh=True)
        with self.writing(old) as w:
            w.lock()  # after any dismissal in progress on the old generation
            w.carry_dismissals(to=g)
            self._set_meta(w.c, "current", g)
            self._set_meta(w.c, "pending", 0)
        self._generation = g
        self._generation_read_at = time.monotonic()
        return old

    def abandon_rebuild(self) -> None:
        stale = self.pending_generation()
        if stale:
            self.drop_generation(stale)
            with self.db.write() as c:
                self._set_meta(c, "pending", 0)

    # -- the worker's side -----------------------------------------------------

    def position(self, g: int) -> int:
        with self.db.read() as c:
            c.execute(
                f"SELECT position FROM {self.db.name('projection_position')} "
                f"WHERE generation = {self.db.p}",
                (g,),
            )
            row = c.fetchone()
        return int(row[0]) if row else 0

    @contextmanager
    def writing(self, g: int) -> Iterator[GenerationWriter]:
        """One write transaction on generation `g`; see GenerationWriter."""
        with self.db.write() as c:
            yield GenerationWriter(self, c, g)

    # -- the readers' side (always the current generation) ---------------------

    def _query(self, table: str, sql: str, params: Sequence[Any]) -> list[Any]:
        """Run `sql` with {T} as the current generation's `table`; if a rebuild
        dropped the generation we cached, look again once."""
        for attempt in (0, 1):
            g = self.current_generation(refresh=attempt == 1)
            key = (sql, table, g)
            statement = self._statements.get(key)
            if statement is None:
                statement = self._statements[key] = sql.replace(
                    "{T}", self._t(table, g)
                )
            try:
                with self.db.read() as c:
                    c.execute(statement, params)
                    return list(c.fetchall())
            except self.db.missing_table_errors:
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def get_states(self, ids: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for chunk in _chunks(ids, 500):
            marks = ",".join([self.db.p] * len(chunk))
            rows = self._query(
                "customers",
                f"SELECT customer_id, state FROM {{T}} WHERE customer_id IN ({marks})",
                chunk,
            )
            found.update((r[0], bytes(r[1])) for r in rows)
        return found

    def get_state(self, customer_id: str) -> bytes | None:
        rows = self._query(
            "customers",
            f"SELECT state FROM {{T}} WHERE customer_id = {self.db.p}",
            (customer_id,),
        )
        return bytes(rows[0][0]) if rows else None

    def lookup_email(self, email: str) -> bytes | None:
        """The customer whose newest event carrying this email is newest."""
        rows = self._query(
            "customers",
            f"SELECT state FROM {{T}} WHERE email_lower = {self.db.p} "
            "ORDER BY email_key DESC LIMIT 1",
            (email.strip().lower(),),
        )
        return bytes(rows[0][0]) if rows else None

    def list_customers(
        self, *, after: str, limit: int, tier: str | None
    ) -> list[tuple[str, bytes]]:
        p = self.db.p
        if tier is None:
            sql = (
                f"SELECT customer_id, state FROM {{T}} WHERE customer_id > {p} "
                f"ORDER BY customer_id LIMIT {p}"
            )
            params: tuple[Any, ...] = (after, limit)
        else:
            sql = (
                f"SELECT customer_id, state FROM {{T}} WHERE tier = {p} "
                f"AND customer_id > {p} ORDER BY customer_id LIMIT {p}"
            )
            params = (tier, after, limit)
        return [(r[0], bytes(r[1])) for r in self._query("customers", sql, params)]

    def ledger(
        self, customer_id: str, *, after: tuple[int, str], limit: int
    ) -> list[LedgerEntry]:
        p = self.db.p
        rows = self._query(
            "ledger",
            f"SELECT created_us, event_id, position, entry FROM {{T}} "
            f"WHERE customer_id = {p} AND (created_us > {p} OR "
            f"(created_us = {p} AND event_id > {p})) "
            f"ORDER BY created_us, event_id LIMIT {p}",
            (customer_id, after[0], after[0], after[1], limit),
        )
        return [ledger_entry(tuple(r)) for r in rows]

    def history(self, customer_id: str, *, after: int, limit: int) -> list[int]:
        p = self.db.p
        rows = self._query(
            "history",
            f"SELECT position FROM {{T}} WHERE customer_id = {p} AND position > {p} "
            f"ORDER BY position LIMIT {p}",
            (customer_id, after, limit),
        )
        return [int(r[0]) for r in rows]

    def dead_letters(self, *, after: int = 0, limit: int = 100) -> list[DeadLetter]:
        p = self.db.p
        rows = self._query(
            "dead_letters",
            "SELECT position, event_id, customer_id, type_name, reason, dismissed "
            f"FROM {{T}} WHERE position > {p} ORDER BY position LIMIT {p}",
            (after, limit),
        )
        return [DeadLetter(*r) for r in rows]

    def dead_letter_count(self) -> int:
        """Dead letters still needing attention (not dismissed)."""
        return int(
            self._query(
                "dead_letters", "SELECT COUNT(*) FROM {T} WHERE dismissed IS NULL", ()
            )[0][0]
        )

    def dismiss_dead_letter(self, position: int, note: str) -> bool:
        """Mark a dead letter that will never apply as seen, so it stops
        counting; False if there is no open one at `position`. A rebuild
        dead-letters the event again and carries the note over (switch_to)."""
        while True:
            g = self.current_generation(refresh=True)
            with self.writing(g) as w:
                w.lock()
                # A rebuild that switched in while we waited for the lock has
                # already carried the old generation's notes: dismiss there.
                if self._meta_in(w.c, "current") == g:
                    return w.dismiss_dead_letter(position, note)

    def history_count(self, customer_id: str) -> int:
        rows = self._query(
            "history",
            f"SELECT COUNT(*) FROM {{T}} WHERE customer_id = {self.db.p}",
            (customer_id,),
        )
        return int(rows[0][0])

    def erase_customer(self, customer_id: str) -> None:
        """Delete every row of the customer from the current generation now,
        under the applier's lock (the log's record of the erasure does the
        same in order; this makes it visible before the worker gets there)."""
        while True:
            g = self.current_generation(refresh=True)
            with self.writing(g) as w:
                w.lock()
                if self._meta_in(w.c, "current") == g:
                    w.erase([customer_id])
                    return

    def customer_count(self) -> int:
        return int(self._query("customers", "SELECT COUNT(*) FROM {T}", ())[0][0])

    def applied_position(self) -> int:
        return self.position(self.current_generation())

    def iter_states(self, batch: int = 1000) -> Iterator[tuple[str, bytes]]:
        after = ""
        while rows := self.list_customers(after=after, limit=batch, tier=None):
            yield from rows
            after = rows[-1][0]


def _chunks(items: Sequence[Any] | Iterable[Any], size: int) -> Iterator[list[Any]]:
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i : i + size]


class GenerationWriter:
    """Writes to one generation inside one transaction.

    Every writer first takes the generation's position row (advancing it, or
    just locking it), so writers of a generation are serialised: states are
    read and written back under that lock and no update is lost.
    """

    def __init__(self, models: SqlReadModels, cursor: Any, g: int) -> None:
        self.models, self.c, self.g = models, cursor, g
        self._t = functools.partial(models._t, generation=g)
        self._position = 0
        self.p = models.db.p

    def advance(self, *, expected: int, to: int) -> None:
        """Move the position from `expected` to `to`, or raise StalePosition:
        a second applier (a standby that took over while we stalled) cannot
        apply the same events again."""
        self.c.execute(
            f"UPDATE {self.models.db.name('projection_position')} "
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
            f"SELECT position FROM {self.models.db.name('projection_position')} "
            f"WHERE generation = {self.p}{self.models.db.for_update}",
            (self.g,),
        )
        row = self.c.fetchone()
        self._position = int(row[0]) if row else 0
        return self._position

    def load_states(self, ids: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for chunk in _chunks(ids, 500):
            marks = ",".join([self.p] * len(chunk))
            self.c.execute(
                f"SELECT customer_id, state FROM {self._t('customers')} "
                f"WHERE customer_id IN ({marks})",
                chunk,
            )
            found.update((r[0], bytes(r[1])) for r in self.c.fetchall())
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
        old, new = self._t("dead_letters"), self.models._t("dead_letters", to)
        self.c.execute(
            f"UPDATE {new} SET dismissed = (SELECT o.dismissed FROM {old} o "
            f"WHERE o.position = {new}.position) WHERE dismissed IS NULL "
            f"AND position IN (SELECT position FROM {old} WHERE dismissed IS NOT NULL)"
        )

    def complete_rebuild(self) -> None:
        """Move a rebuild's staged history and ledger rows into their tables,
        in key order, drop the staging tables, and index the customers: one
        sort each instead of a B-tree insert per row."""
        c, t, db = self.c, self._t, self.models.db
        self.models.create_indexes(c, self.g)
        db.merge_staged(
            c,
            t("history_stage"),
            t("history"),
            "customer_id, position",
            "customer_id, position",
        )
        db.merge_staged(
            c,
            t("ledger_stage"),
            t("ledger"),
            LEDGER_COLUMNS,
            "customer_id, created_us, event_id",
        )

    def erase(self, customer_ids: Sequence[str], *, staged: bool = False) -> None:
        """Every row of these customers in this generation (and its staging
        tables, during a rebuild)."""
        tables = ["customers", "ledger", "history", "dead_letters"]
        if staged:
            tables += [f"{table}_stage" for table in STAGED]
        for table in tables:
            self.c.executemany(
                f"DELETE FROM {self._t(table)} WHERE customer_id = {self.p}",
                [(cid,) for cid in customer_ids],
            )

    def insert_customers(self, rows: Sequence[CustomerRow]) -> None:
        """The first customer rows of a rebuild's (empty) generation."""
        self.models.db.bulk_insert(
            self.c,
            self._t("customers"),
            CUSTOMER_COLUMNS,
            _customer_values(rows),
        )

    def write(self, batch: Batch, *, staged: bool = False) -> None:
        """Views, ledger, history and dead letters of a batch; with `staged`,
        history and ledger rows go to the rebuild's staging tables."""
        c, p, g = self.c, self.p, self.g
        t = self.models._t
        history, ledger = (
            (t("history_stage", g), t("ledger_stage", g))
            if staged
            else (t("history", g), t("ledger", g))
        )
        if batch.erased:
            self.erase(batch.erased, staged=staged)
        if batch.customers:
            c.executemany(
                f"INSERT INTO {t('customers', g)} ({CUSTOMER_COLUMNS}) "
                f"VALUES ({p},{p},{p},{p},{p},{p}) "
                "ON CONFLICT (customer_id) DO UPDATE SET "
                "email_lower = excluded.email_lower, "
                "email_key = excluded.email_key, tier = excluded.tier, "
                "position = excluded.position, state = excluded.state",
                _customer_values(batch.customers),
            )
        if staged:  # a rebuild's own tables: nothing to conflict with
            db = self.models.db
            if batch.ledger:
                db.bulk_insert(c, ledger, LEDGER_COLUMNS, batch.ledger)
            if batch.history:
                db.bulk_insert(c, history, "customer_id, position", batch.history)
        else:
            if batch.ledger:
                c.executemany(
                    f"INSERT INTO {ledger} ({LEDGER_COLUMNS}) "
                    f"VALUES ({p},{p},{p},{p},{p}) ON CONFLICT DO NOTHING",
                    batch.ledger,
                )
            if batch.history:
                c.executemany(
                    f"INSERT INTO {history} (customer_id, position) "
                    f"VALUES ({p},{p}) ON CONFLICT DO NOTHING",
                    batch.history,
                )
        if batch.dead:
            c.executemany(
                f"INSERT INTO {t('dead_letters', g)} (position, event_id, "
                f"customer_id, type_name, reason) VALUES ({p},{p},{p},{p},{p}) "
                "ON CONFLICT DO NOTHING",
                [
                    (d.position, d.event_id, d.customer_id, d.type_name, d.reason)
                    for d in batch.dead
                ],
            )
        self.models.db.after_commit_sql(c, g, self._position)
