"""Signed requests we could not store as events, kept for operators.

Nothing a sender signed is dropped: a body we cannot parse goes here with
its reason, its headers and the time, and can be listed (and later retried).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.eventstore import STORE_ERRORS, StoreUnavailable

Transaction = Callable[..., AbstractContextManager[Any]]


@dataclass(frozen=True, slots=True)
class QuarantinedRequest:
    id: int
    received_at: datetime
    reason: str
    headers: dict[str, str]
    body: bytes
    resolution: str | None = None  # set once re-processed


class Quarantine:
    """A table beside the events, in the same database.

    `transaction` is the library datastore's `transaction(commit=...)`;
    `placeholder` is the driver's parameter marker ('?' or '%s').
    """

    def __init__(
        self, transaction: Transaction, placeholder: str, ddl: str, table: str
    ) -> None:
        self._transaction = transaction
        self._p = placeholder
        self._ddl = ddl
        self._table = table

    def create_table(self) -> None:
        with self._transaction(commit=True) as c:
            c.execute(self._ddl)

    def add(self, reason: str, headers: Mapping[str, str], body: bytes) -> int:
        p = self._p
        sql = (
            f"INSERT INTO {self._table} (received_at, reason, headers, body) "
            f"VALUES ({p}, {p}, {p}, {p}) RETURNING id"
        )
        row = (
            datetime.now(UTC).isoformat(),
            reason,
            json.dumps(dict(headers), sort_keys=True),
            body,
        )
        try:
            with self._transaction(commit=True) as c:
                c.execute(sql, row)
                return int(_first(c.fetchone()))
        except STORE_ERRORS as e:
            raise StoreUnavailable(str(e)) from e

    def list(self, limit: int = 100, after_id: int = 0) -> list[QuarantinedRequest]:
        p = self._p
        sql = (
            "SELECT id, received_at, reason, headers, body, resolution "
            f"FROM {self._table} "
            f"WHERE id > {p} ORDER BY id LIMIT {p}"
        )
        with self._transaction(commit=False) as c:
            c.execute(sql, (after_id, limit))
            return [_row(r) for r in c.fetchall()]

    def get(self, request_id: int) -> QuarantinedRequest | None:
        sql = (
            "SELECT id, received_at, reason, headers, body, resolution "
            f"FROM {self._table} "
            f"WHERE id = {self._p}"
        )
        with self._transaction(commit=False) as c:
            c.execute(sql, (request_id,))
            row = c.fetchone()
        return None if row is None else _row(row)

    def resolve(self, request_id: int, resolution: str) -> bool:
        """Mark a request re-processed; False if it already was."""
        p = self._p
        with self._transaction(commit=True) as c:
            c.execute(
                f"UPDATE {self._table} SET resolution = {p} "
                f"WHERE id = {p} AND resolution IS NULL RETURNING id",
                (resolution, request_id),
            )
            return c.fetchone() is not None

    def count(self) -> int:
        with self._transaction(commit=False) as c:
            c.execute(f"SELECT COUNT(*) AS n FROM {self._table}")
            return int(_first(c.fetchone()))

    def open_count(self) -> int:
        with self._transaction(commit=False) as c:
            c.execute(
                f"SELECT COUNT(*) AS n FROM {self._table} WHERE resolution IS NULL"
            )
            return int(_first(c.fetchone()))

    def __iter__(self) -> Iterator[QuarantinedRequest]:
        after = 0
        while batch := self.list(500, after):
            yield from batch
            after = batch[-1].id


def _first(row: Any) -> Any:
    return row[next(iter(row.keys()))] if hasattr(row, "keys") else row[0]


def _row(r: Any) -> QuarantinedRequest:
    return QuarantinedRequest(
        id=int(r["id"]),
        received_at=datetime.fromisoformat(r["received_at"]),
        reason=r["reason"],
        headers=json.loads(r["headers"]),
        body=bytes(r["body"]),
        resolution=r["resolution"],
    )
