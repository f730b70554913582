"""Tier: from the newest `Tier changed`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..events import RecordedEvent
from ..payload_types import TierChanged
from .state import CustomerState, TierSet
from .timekeys import at, newer


@dataclass(frozen=True, slots=True)
class Tier:
    current: str | None = None
    previous: str | None = None
    changed_at: datetime | None = None


def on_tier_changed(
    state: CustomerState, event: RecordedEvent, p: TierChanged, us: int
) -> None:
    if newer(us, event.id, state.tier):
        state.tier = TierSet(us, event.id, p.current, p.previous)


def tier_view(state: CustomerState) -> Tier:
    newest = state.tier
    if newest is None:
        return Tier()
    return Tier(newest.current, newest.previous, at(newest.us))
