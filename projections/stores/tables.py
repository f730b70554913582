"""The read models' tables: their names per generation, their columns,
and the customers' secondary indexes. Shared by the writer and the
generations, so neither needs the other's module."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from projections.stores.db import Db

# Tables a rebuild fills through a staging twin (see begin_rebuild).
STAGED = ("history", "ledger")
TABLES = ("customers", "ledger", "history", "dead_letters")
LEDGER_COLUMNS = "customer_id, created_us, event_id, position, entry"
HISTORY_COLUMNS = "customer_id, position"
CUSTOMER_COLUMNS = "customer_id, email_lower, email_key, tier, position, state, answer"


def table(db: Db, name: str, generation: int) -> str:
    """The qualified name of generation `generation`'s table `name`."""
    return db.name(f"{name}_{generation}")


def create_indexes(db: Db, c: Any, g: int) -> None:
    """The customers' secondary indexes of generation `g`."""
    customers = table(db, "customers", g)
    # The email alone: LookupCustomer sorts the few rows sharing an email by
    # their recency key, which changes with nearly every event, so an index
    # holding it too was rewritten by nearly every upsert.
    c.execute(
        f"CREATE INDEX IF NOT EXISTS customers_{g}_email ON {customers} (email_lower)"
    )
    c.execute(
        f"CREATE INDEX IF NOT EXISTS customers_{g}_tier "
        f"ON {customers} (tier, customer_id)"
    )


def chunks(items: Sequence[Any] | Iterable[Any], size: int) -> Iterator[list[Any]]:
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i : i + size]
