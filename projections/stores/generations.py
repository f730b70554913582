"""The read models' tables, one set per generation, and the switch between
generations.

A generation is a complete set of read-model tables with its own applied
position. The live worker writes the current generation; a rebuild fills a
fresh one from position 0 and is switched in atomically when complete, so
readers keep reading the old tables until then.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from projections.customer.codec import decode_state
from projections.customer.state import CustomerState
from projections.stores.answers import Answers
from projections.stores.db import Db
from projections.stores.schema import migrate_read_models
from projections.stores.tables import STAGED, TABLES, create_indexes, table
from projections.stores.writer import GenerationWriter

# projection_meta key of the answers' encoding version (see answers.py).
ANSWERS_META = "answers_version"


class Generations:
    """Schema, meta values and generations of one read-model store."""

    GENERATION_TTL = 1.0  # seconds a reader trusts its cached generation

    def __init__(self, db: Db, answers: Answers) -> None:
        self.db = db
        self.answers = answers
        self._generation = 0
        self._generation_read_at = 0.0

    @contextmanager
    def writing(self, g: int) -> Iterator[GenerationWriter]:
        """One write transaction on generation `g`; see GenerationWriter."""
        with self.db.write() as c:
            yield GenerationWriter(self.db, c, g)

    def setup(self) -> None:
        """Migrate the shared tables (schema.py), create the first
        generation if missing, and make the stored answers again if they
        were made by another encoding."""
        migrate_read_models(self.db)
        if self.current_generation(refresh=True) == 0:
            self.create_generation(1)
            with self.db.write() as c:
                self._set_meta(c, "current", 1)
                self._set_meta(c, ANSWERS_META, self.answers.version)
            self._generation = 1
        if self._meta(ANSWERS_META) != self.answers.version:
            self.reencode_answers()

    def _set_meta(self, c: Any, key: str, value: int) -> None:
        p = self.db.p
        c.execute(
            f"INSERT INTO {self.db.name('projection_meta')} (key, value) "
            f"VALUES ({p}, {p}) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _meta(self, key: str) -> int:
        with self.db.read() as c:
            return self.meta_in(c, key)

    def meta_in(self, c: Any, key: str) -> int:
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

    def _t(self, name: str, generation: int) -> str:
        return table(self.db, name, generation)

    def create_generation(self, g: int, *, indexes: bool = True) -> None:
        """The tables of generation `g`; a rebuild asks for the customers'
        secondary indexes later (create_indexes), once the rows are in."""
        t, blob, big = self._t, self.db.blob, self.db.bigint
        with self.db.write() as c:
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {t('customers', g)} ("
                "customer_id TEXT PRIMARY KEY, email_lower TEXT, email_key TEXT, "
                f"tier TEXT, position {big} NOT NULL, state {blob} NOT NULL, "
                f"answer {blob})"
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
        create_indexes(self.db, c, g)

    def drop_generation(self, g: int) -> None:
        with self.db.write() as c:
            for table in TABLES:
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
        dead-letters the same events again (the fold still refuses them).
        The new generation's answers were made by this process's encoding."""
        old = self.current_generation(refresh=True)
        with self.writing(old) as w:
            w.lock()  # after any dismissal in progress on the old generation
            w.carry_dismissals(to=g)
            self._set_meta(w.c, "current", g)
            self._set_meta(w.c, "pending", 0)
            self._set_meta(w.c, ANSWERS_META, self.answers.version)
        self._generation = g
        self._generation_read_at = time.monotonic()
        return old

    def abandon_rebuild(self) -> None:
        stale = self.pending_generation()
        if stale:
            self.drop_generation(stale)
            with self.db.write() as c:
                self._set_meta(c, "pending", 0)

    def reencode_answers(self, chunk: int = 1000) -> int:
        """Make every stored answer of the current generation again with
        this process's encoding; returns how many. In chunks, each under
        the applier's lock, so the live worker interleaves; the version is
        recorded with the last chunk."""
        g = self.current_generation(refresh=True)
        customers = self._t("customers", g)
        p, encode, after, done = self.db.p, self.answers.encode, "", 0
        while True:
            with self.writing(g) as w:
                w.lock()
                if self.meta_in(w.c, "current") != g:  # a rebuild switched in
                    return done
                w.c.execute(
                    f"SELECT customer_id, state FROM {customers} "
                    f"WHERE customer_id > {p} ORDER BY customer_id LIMIT {p}",
                    (after, chunk),
                )
                rows = w.c.fetchall()
                w.c.executemany(
                    f"UPDATE {customers} SET answer = {p} WHERE customer_id = {p}",
                    [(_answer(encode, bytes(s)), cid) for cid, s in rows],
                )
                done += len(rows)
                if len(rows) < chunk:
                    self._set_meta(w.c, ANSWERS_META, self.answers.version)
                    return done
                after = rows[-1][0]


def _answer(encode: Callable[[CustomerState], bytes], state: bytes) -> bytes | None:
    """None for a state this build cannot decode: readers then build the
    answer from the state themselves, as they do for any missing answer."""
    try:
        return encode(decode_state(state))
    except ValueError:
        return None
