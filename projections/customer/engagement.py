"""Engagement: counters, and when the customer was last seen doing anything."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..events import RecordedEvent
from .state import CustomerState
from .timekeys import at


@dataclass(frozen=True, slots=True)
class Engagement:
    scans: int = 0
    taps: int = 0
    wallet_clicks: int = 0
    wallet_visits: int = 0
    last_activity_at: datetime | None = None


# The context these events carry (device, location, url...) is replayed in
# their typed payloads; the read model just counts them.


def on_scanned(state: CustomerState, event: RecordedEvent, p: object, us: int) -> None:
    state.scans += 1


def on_tapped(state: CustomerState, event: RecordedEvent, p: object, us: int) -> None:
    state.taps += 1


def on_wallet_click(
    state: CustomerState, event: RecordedEvent, p: object, us: int
) -> None:
    state.wallet_clicks += 1


def on_wallet_visit(
    state: CustomerState, event: RecordedEvent, p: object, us: int
) -> None:
    state.wallet_visits += 1


def note_activity(state: CustomerState, us: int) -> None:
    """Every applied event of a known type counts as activity."""
    last = state.last_activity
    if last is None or us > last:
        state.last_activity = us


def engagement_view(state: CustomerState) -> Engagement:
    return Engagement(
        state.scans,
        state.taps,
        state.wallet_clicks,
        state.wallet_visits,
        at(state.last_activity),
    )
