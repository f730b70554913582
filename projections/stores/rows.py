"""What a batch of applied events writes, as plain rows (no SQL here)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec

from projections.customer.points import LedgerEntry
from projections.customer.state import CustomerState
from projections.customer.timekeys import at, micros


class CustomerRow(NamedTuple):
    """A customer's row, its fields in the table's column order
    (tables.CUSTOMER_COLUMNS): it is its own statement parameters. A
    NamedTuple, as cheap to make as a tuple: the live worker makes one a
    changed customer a batch, a rebuild one a customer."""

    customer_id: str
    email_lower: str | None
    email_key: str | None  # sortable "newest event carrying the email"
    tier: str | None
    position: int
    state: bytes
    answer: bytes | None  # the API's encoded answer (see answers.py)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    position: int
    event_id: str
    customer_id: str
    type_name: str
    reason: str
    dismissed: str | None = None  # an operator's note once dismissed


@dataclass(slots=True)
class Batch:
    """Everything one transaction writes, with the position it advances to."""

    position: int
    customers: list[CustomerRow] = field(default_factory=list)
    ledger: list[tuple[str, int, str, int, str]] = field(default_factory=list)
    history: list[tuple[str, int]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    # Customers erased by this batch: all their rows go, before the rows
    # above (which may start a new record for the same id) are written.
    erased: list[str] = field(default_factory=list)


def index_fields(state: CustomerState) -> tuple[str | None, str | None, str | None]:
    """(lower-cased email, its recency key, current tier) for the indexes."""
    email = state.email  # register [us, event_id, email]
    tier = state.tier  # register [us, event_id, current, previous]
    return (
        email[2].lower() if email else None,
        f"{email[0]:020d}|{email[1]}" if email else None,
        tier[2] if tier else None,
    )


def _num(value: int | Decimal | None) -> int | str | None:
    return value if value is None or isinstance(value, int) else str(value)


# A ledger entry's column is compact JSON, written by msgspec (a tenth of the
# stdlib's time: one is made for every balance event, live and in a rebuild).
# Its ints of any size stay exact either way; a text msgspec refuses (a lone
# surrogate, which a sender's JSON can spell) is written by the stdlib, and
# read back by it too. Either writer's rows read as the same values.
_STDLIB_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
_ENCODE = msgspec.json.Encoder().encode
_DECODE = msgspec.json.Decoder().decode


def _entry_text(entry: list[Any]) -> str:
    try:
        return _ENCODE(entry).decode()
    except UnicodeEncodeError:
        return _STDLIB_ENCODE(entry)


def _entry_values(text: str) -> Any:
    try:
        return _DECODE(text)
    except msgspec.DecodeError:
        return json.loads(text)


def ledger_row(customer_id: str, e: LedgerEntry) -> tuple[str, int, str, int, str]:
    entry = [
        _num(e.amount),
        e.reference,
        _num(e.previous_balance),
        _num(e.points_to_next_reward),
        e.next_reward_name,
    ]
    return (
        customer_id,
        micros(e.created_at),
        e.event_id,
        e.position,
        _entry_text(entry),
    )


def ledger_entry(row: tuple[int, str, int, str]) -> LedgerEntry:
    created_us, event_id, position, payload = row
    amount, reference, previous, to_next, next_name = _entry_values(payload)

    def num(v: int | str | None) -> int | Decimal | None:
        return Decimal(v) if isinstance(v, str) else v

    created_at = at(created_us)
    assert created_at is not None
    return LedgerEntry(
        event_id=event_id,
        position=position,
        created_at=created_at,
        amount=num(amount),  # type: ignore[arg-type]
        reference=reference,
        previous_balance=num(previous),
        points_to_next_reward=num(to_next),
        next_reward_name=next_name,
    )
