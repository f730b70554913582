"""The readers' side of the read models: always the current generation."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from projections.customer.points import LedgerEntry
from projections.stores.db import Db
from projections.stores.generations import Generations
from projections.stores.rows import DeadLetter, ledger_entry
from projections.stores.tables import chunks, table


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


class Queries:
    """Reads of the generation `generations` says is current."""

    def __init__(self, db: Db, generations: Generations) -> None:
        self.db = db
        self.generations = generations
        self._statements: dict[tuple[str, str, int], str] = {}

    def current_generation(self, *, refresh: bool = False) -> int:
        return self.generations.current_generation(refresh=refresh)

    def _t(self, name: str, generation: int) -> str:
        return table(self.db, name, generation)

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
                return self.db.select(statement, params)
            except self.db.missing_table_errors:
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    # -- customers: encoded states ----------------------------------------------

    def get_states(self, ids: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        for chunk in chunks(ids, 500):
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
        row = self._lookup("state", email)
        return None if row is None else bytes(row[0])

    def list_customers(
        self, *, after: str, limit: int, tier: str | None
    ) -> list[tuple[str, bytes]]:
        rows = self._list("state", after=after, limit=limit, tier=tier)
        return [(r[0], bytes(r[1])) for r in rows]

    def iter_states(self, batch: int = 1000) -> Iterator[tuple[str, bytes]]:
        after = ""
        while rows := self.list_customers(after=after, limit=batch, tier=None):
            yield from rows
            after = rows[-1][0]

    # -- customers: stored answers (None where none was made) ------------------

    def get_answer(self, customer_id: str) -> tuple[bytes | None] | None:
        """(answer,) for a stored customer, None for an unknown one."""
        rows = self._query(
            "customers",
            f"SELECT answer FROM {{T}} WHERE customer_id = {self.db.p}",
            (customer_id,),
        )
        return (_bytes(rows[0][0]),) if rows else None

    def get_answers(self, ids: Sequence[str]) -> dict[str, bytes | None]:
        found: dict[str, bytes | None] = {}
        for chunk in chunks(ids, 500):
            marks = ",".join([self.db.p] * len(chunk))
            rows = self._query(
                "customers",
                f"SELECT customer_id, answer FROM {{T}} WHERE customer_id IN ({marks})",
                chunk,
            )
            found.update((r[0], _bytes(r[1])) for r in rows)
        return found

    def lookup_answer(self, email: str) -> tuple[str, bytes | None] | None:
        """(customer id, answer) of the customer lookup_email finds."""
        row = self._lookup("customer_id, answer", email)
        return None if row is None else (row[0], _bytes(row[1]))

    def list_answers(
        self, *, after: str, limit: int, tier: str | None
    ) -> list[tuple[str, bytes | None]]:
        rows = self._list("answer", after=after, limit=limit, tier=tier)
        return [(r[0], _bytes(r[1])) for r in rows]

    def _lookup(self, columns: str, email: str) -> Any:
        rows = self._query(
            "customers",
            f"SELECT {columns} FROM {{T}} WHERE email_lower = {self.db.p} "
            "ORDER BY email_key DESC LIMIT 1",
            (email.strip().lower(),),
        )
        return rows[0] if rows else None

    def _list(self, column: str, *, after: str, limit: int, tier: str | None) -> Any:
        p = self.db.p
        if tier is None:
            sql = (
                f"SELECT customer_id, {column} FROM {{T}} WHERE customer_id > {p} "
                f"ORDER BY customer_id LIMIT {p}"
            )
            params: tuple[Any, ...] = (after, limit)
        else:
            sql = (
                f"SELECT customer_id, {column} FROM {{T}} WHERE tier = {p} "
                f"AND customer_id > {p} ORDER BY customer_id LIMIT {p}"
            )
            params = (tier, after, limit)
        return self._query("customers", sql, params)

    def customer_count(self) -> int:
        return int(self._query("customers", "SELECT COUNT(*) FROM {T}", ())[0][0])

    # -- ledger, history, dead letters -----------------------------------------

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

    def history_count(self, customer_id: str) -> int:
        rows = self._query(
            "history",
            f"SELECT COUNT(*) FROM {{T}} WHERE customer_id = {self.db.p}",
            (customer_id,),
        )
        return int(rows[0][0])

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
