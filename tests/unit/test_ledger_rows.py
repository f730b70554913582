"""A ledger entry's stored column: written by msgspec (the stdlib where
msgspec refuses a text), read back exactly, and rows the stdlib wrote before
read as the same entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from projections.customer.points import LedgerEntry
from projections.stores.rows import ledger_entry, ledger_row

WHEN = datetime(2026, 3, 8, 12, 30, 1, 250_000, tzinfo=UTC)

numbers = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),  # past 64 bits too
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
)
texts = st.one_of(st.none(), st.text())  # any code point, lone surrogates too


def entry(**changes: object) -> LedgerEntry:
    fields: dict[str, object] = {
        "event_id": "e1",
        "position": 7,
        "created_at": WHEN,
        "amount": 150,
        "reference": "order-1",
        "previous_balance": 1200,
        "points_to_next_reward": Decimal("350.5"),
        "next_reward_name": "Free coffee",
    }
    fields.update(changes)
    return LedgerEntry(**fields)  # type: ignore[arg-type]


def stored(e: LedgerEntry) -> LedgerEntry:
    """Through the table's columns and back."""
    _, created_us, event_id, position, text = ledger_row("c1", e)
    return ledger_entry((created_us, event_id, position, text))


def same(a: LedgerEntry, b: LedgerEntry) -> bool:
    # A Decimal's digits too, not only its value: each number has one text.
    return a == b and [repr(getattr(a, f)) for f in a.__slots__] == [
        repr(getattr(b, f)) for f in b.__slots__
    ]


@given(numbers, texts, st.one_of(st.none(), numbers), texts)
def test_every_entry_reads_back_as_it_was(
    amount: int | Decimal,
    reference: str | None,
    previous: int | Decimal | None,
    name: str | None,
) -> None:
    e = entry(
        amount=amount,
        reference=reference,
        previous_balance=previous,
        points_to_next_reward=None,
        next_reward_name=name,
    )
    assert same(stored(e), e)


def test_the_column_is_compact_json_with_exact_numbers() -> None:
    text = ledger_row("c1", entry(amount=2**70, reference="café"))[4]
    assert text == '[1180591620717411303424,"café",1200,"350.5","Free coffee"]'
    assert json.loads(text)[0] == 2**70


def test_a_text_msgspec_refuses_is_written_and_read_by_the_stdlib() -> None:
    e = entry(reference="a\ud800b")  # a lone surrogate: no UTF-8 for it
    text = ledger_row("c1", e)[4]
    assert "\\ud800" in text
    assert same(stored(e), e)


def test_rows_the_stdlib_wrote_read_as_the_same_entries() -> None:
    # What the ledger's rows held before: ASCII-only, other code points
    # escaped.
    old = json.JSONEncoder(separators=(",", ":")).encode(
        [-25, "réf ✓", None, "0.75", None]
    )
    assert "\\u00e9" in old
    got = ledger_entry((1, "e1", 7, old))
    assert (got.amount, got.reference, got.previous_balance) == (-25, "réf ✓", None)
    assert repr(got.points_to_next_reward) == "Decimal('0.75')"
