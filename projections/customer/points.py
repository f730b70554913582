"""Points: the balance, the next reward, and one ledger entry per change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ..events import RecordedEvent
from ..exact_numbers import Number, add, load, store
from ..payload_types import BalanceChanged
from .state import BalanceSet, CustomerState
from .timekeys import newer


# Not frozen, like RecordedEvent: a rebuild makes one for every `Balance
# changed`, and a frozen dataclass costs five times as much to build. Treat
# it as immutable.
@dataclass(slots=True)
class LedgerEntry:
    """One `Balance changed`, as the ledger lists it."""

    event_id: str
    position: int
    created_at: datetime
    amount: int | Decimal
    reference: str | None
    previous_balance: int | Decimal | None
    points_to_next_reward: int | Decimal | None
    next_reward_name: str | None


@dataclass(frozen=True, slots=True)
class Points:
    points_balance: int | Decimal
    points_to_next_reward: int | Decimal | None
    next_reward_name: str | None


def on_balance_changed(
    state: CustomerState, event: RecordedEvent, p: BalanceChanged, us: int
) -> LedgerEntry:
    amount = p.amount
    previous = p.previous_balance
    to_next = p.points_to_next_reward
    next_name = p.next_reward_name
    reference = p.reference
    total = state.points_sum
    if type(total) is int and type(amount) is int:
        state.points_sum = total + amount
    else:
        state.points_sum = store(add(load(total), amount))
    if newer(us, event.id, state.balance):
        state.balance = BalanceSet(
            us, event.id, store(amount), store(previous), store(to_next), next_name
        )
    return LedgerEntry(
        event.id,
        event.position,
        event.created_at,
        amount,
        reference,
        previous,
        to_next,
        next_name,
    )


def points_view(state: CustomerState) -> Points:
    newest = state.balance
    total: Number = load(state.points_sum)
    if newest is None:
        return Points(total, None, None)
    previous = load(newest.previous)
    if previous is not None:
        # The sender's own running balance beats our sum (it knows about
        # points from before the integration).
        total = add(previous, load(newest.amount))
    return Points(total, load(newest.to_next), newest.next_name)
