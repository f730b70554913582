"""Read models in SQL tables, shared by every backend: the backend's
protocol and the one object the rest of the code holds.

The tables and generations are in generations.py, the readers' queries in
queries.py, and what an applied batch writes in writer.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from projections.stores.answers import NO_ANSWERS, Answers
from projections.stores.generations import Generations
from projections.stores.queries import Queries
from projections.stores.writer import GenerationWriter, StalePosition

__all__ = ["Db", "GenerationWriter", "SqlReadModels", "StalePosition"]


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


class SqlReadModels(Generations, Queries):
    """All reads and writes of the read models; no fold logic.

    `answers` makes the customers' stored answers (see answers.py); the
    service passes its own, and read models opened without one store none.
    """

    def __init__(self, db: Db, answers: Answers = NO_ANSWERS) -> None:
        self.db = db
        self.answers = answers
        self._generation = 0
        self._generation_read_at = 0.0
        self._statements: dict[tuple[str, str, int], str] = {}

    @contextmanager
    def writing(self, g: int) -> Iterator[GenerationWriter]:
        """One write transaction on generation `g`; see GenerationWriter."""
        with self.db.write() as c:
            yield GenerationWriter(self, c, g)

    def position(self, g: int) -> int:
        with self.db.read() as c:
            c.execute(
                f"SELECT position FROM {self.db.name('projection_position')} "
                f"WHERE generation = {self.db.p}",
                (g,),
            )
            row = c.fetchone()
        return int(row[0]) if row else 0

    def applied_position(self) -> int:
        """The live generation's position, read in one statement: a cached
        generation number may be one a rebuild's switch has just dropped."""
        meta = self.db.name("projection_meta")
        with self.db.read() as c:
            c.execute(
                f"SELECT position FROM {self.db.name('projection_position')} "
                f"WHERE generation = (SELECT value FROM {meta} WHERE key = 'current')"
            )
            row = c.fetchone()
        return int(row[0]) if row else 0

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

    def erase_customer(self, customer_id: str, *, before: int) -> bool:
        """Delete every row of the customer from the current generation if it
        has not yet applied position `before` (the erasure's record); True if
        it deleted. Under the applier's lock, the generation's position says
        exactly which events its rows reflect: below `before`, all of them
        precede the erasure; at or past it, the record has already deleted
        them in log order, and what is there now came after the erasure and
        must stay. (This makes an erasure visible before the worker gets
        there, without ever taking a later event back.)"""
        while True:
            g = self.current_generation(refresh=True)
            with self.writing(g) as w:
                applied = w.lock()
                if self._meta_in(w.c, "current") == g:
                    if applied >= before:
                        return False
                    w.erase([customer_id])
                    return True
