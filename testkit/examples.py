"""Helpers of the fold examples: instants minutes apart, and the view of a
customer folded from events that must all apply (no dead letters)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from projections.customer import Customer, fold, view
from projections.events import RecordedEvent

T0 = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def customer(*events: RecordedEvent, customer_id: str = "c1") -> Customer:
    result = fold(customer_id, events)
    assert result.dead == []
    return view(result.state)
