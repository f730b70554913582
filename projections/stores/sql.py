"""Read models in SQL tables, shared by every backend: the one object the
rest of the code holds.

It is made of parts, each in its own module: the backend's connections and
spelling (db.py), the tables and generations (generations.py), the
readers' queries (queries.py) and what an applied batch writes
(writer.py). Its methods are theirs, named once here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager

from projections.customer.points import LedgerEntry
from projections.stores.answers import NO_ANSWERS, Answers
from projections.stores.db import Db
from projections.stores.generations import Generations
from projections.stores.queries import Queries
from projections.stores.rows import DeadLetter
from projections.stores.writer import GenerationWriter, StalePosition

__all__ = ["Db", "GenerationWriter", "SqlReadModels", "StalePosition"]


class SqlReadModels:
    """All reads and writes of the read models; no fold logic.

    `answers` makes the customers' stored answers (see answers.py); the
    service passes its own, and read models opened without one store none.
    """

    def __init__(self, db: Db, answers: Answers = NO_ANSWERS) -> None:
        self.db = db
        self.answers = answers
        self.generations = Generations(db, answers)
        self.queries = Queries(db, self.generations)

    # -- generations (generations.py) -----------------------------------------

    def setup(self) -> None:
        self.generations.setup()

    def writing(self, g: int) -> AbstractContextManager[GenerationWriter]:
        """One write transaction on generation `g`; see GenerationWriter."""
        return self.generations.writing(g)

    def current_generation(self, *, refresh: bool = False) -> int:
        return self.generations.current_generation(refresh=refresh)

    def pending_generation(self) -> int:
        return self.generations.pending_generation()

    def create_generation(self, g: int, *, indexes: bool = True) -> None:
        self.generations.create_generation(g, indexes=indexes)

    def drop_generation(self, g: int) -> None:
        self.generations.drop_generation(g)

    def begin_rebuild(self) -> int:
        return self.generations.begin_rebuild()

    def switch_to(self, g: int) -> int:
        return self.generations.switch_to(g)

    def abandon_rebuild(self) -> None:
        self.generations.abandon_rebuild()

    def reencode_answers(self, chunk: int = 1000) -> int:
        return self.generations.reencode_answers(chunk)

    # -- reads of the current generation (queries.py) ---------------------------

    def get_states(self, ids: Sequence[str]) -> dict[str, bytes]:
        return self.queries.get_states(ids)

    def get_state(self, customer_id: str) -> bytes | None:
        return self.queries.get_state(customer_id)

    def lookup_email(self, email: str) -> bytes | None:
        return self.queries.lookup_email(email)

    def list_customers(
        self, *, after: str, limit: int, tier: str | None
    ) -> list[tuple[str, bytes]]:
        return self.queries.list_customers(after=after, limit=limit, tier=tier)

    def iter_states(self, batch: int = 1000) -> Iterator[tuple[str, bytes]]:
        return self.queries.iter_states(batch)

    def get_answer(self, customer_id: str) -> tuple[bytes | None] | None:
        return self.queries.get_answer(customer_id)

    def get_answers(self, ids: Sequence[str]) -> dict[str, bytes | None]:
        return self.queries.get_answers(ids)

    def lookup_answer(self, email: str) -> tuple[str, bytes | None] | None:
        return self.queries.lookup_answer(email)

    def list_answers(
        self, *, after: str, limit: int, tier: str | None
    ) -> list[tuple[str, bytes | None]]:
        return self.queries.list_answers(after=after, limit=limit, tier=tier)

    def customer_count(self) -> int:
        return self.queries.customer_count()

    def ledger(
        self, customer_id: str, *, after: tuple[int, str], limit: int
    ) -> list[LedgerEntry]:
        return self.queries.ledger(customer_id, after=after, limit=limit)

    def history(self, customer_id: str, *, after: int, limit: int) -> list[int]:
        return self.queries.history(customer_id, after=after, limit=limit)

    def history_count(self, customer_id: str) -> int:
        return self.queries.history_count(customer_id)

    def dead_letters(self, *, after: int = 0, limit: int = 100) -> list[DeadLetter]:
        return self.queries.dead_letters(after=after, limit=limit)

    def dead_letter_count(self) -> int:
        return self.queries.dead_letter_count()

    # -- positions and the operations over both ---------------------------------

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
                if self.generations.meta_in(w.c, "current") == g:
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
                if self.generations.meta_in(w.c, "current") == g:
                    if applied >= before:
                        return False
                    w.erase([customer_id])
                    return True
