"""A CustomerRow is passed to the database as it is, as the customers
table's parameters: its fields must be CUSTOMER_COLUMNS, in that order."""

from __future__ import annotations

from projections.stores.rows import CustomerRow
from projections.stores.tables import CUSTOMER_COLUMNS


def test_a_customer_row_is_its_columns_in_order() -> None:
    columns = tuple(name.strip() for name in CUSTOMER_COLUMNS.split(","))
    assert CustomerRow._fields == columns
    row = CustomerRow("c1", "a@b.c", "k", "Gold", 7, b"state", b"answer")
    assert dict(zip(columns, row, strict=True))["position"] == 7
