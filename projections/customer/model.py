"""A customer's read model: the composed state, `apply`, `fold` and `view`.

Every part is order-independent (last-writer-wins registers keyed by the
event's sort key, per-code/per-id maps of those, counters, max), so folding
any permutation of a customer's events gives the same state; `fold` also
drops duplicate ids, which makes it a function of the *set* of events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..events import EventType, RecordedEvent
from ..fields import PoisonEvent
from ..payloads import READINGS, Reading
from . import (
    birthday,
    coupons,
    engagement,
    gift_cards,
    points,
    profile,
    rewards,
    tier,
    wallet_pass,
)
from .birthday import Birthday
from .coupons import Coupon
from .engagement import Engagement
from .gift_cards import GiftCard
from .points import LedgerEntry
from .profile import Utm
from .rewards import RedeemableReward, RedeemedReward
from .state import CustomerState, new_state
from .tier import Tier
from .timekeys import micros
from .wallet_pass import WalletPass

__all__ = [
    "Customer",
    "CustomerState",
    "FoldResult",
    "PoisonEvent",
    "apply",
    "fold",
    "new_state",
    "view",
]

# `apply` reads the event's typed payload (raising PoisonEvent) before any
# handler touches the state, so a poison event leaves the state as it was.
# Each handler takes its own type's payload (payloads.SPECS pairs them).
Handler = Callable[[CustomerState, RecordedEvent, Any, int], LedgerEntry | None]

_HANDLERS: dict[EventType, Handler] = {
    EventType.CUSTOMER_CREATED: profile.on_customer_created,
    EventType.CUSTOMER_BIRTHDAY: birthday.on_birthday,
    EventType.CUSTOMER_SCANNED: engagement.on_scanned,
    EventType.CUSTOMER_TAPPED: engagement.on_tapped,
    EventType.WALLET_PASS_REQUESTED: wallet_pass.on_requested,
    EventType.WALLET_PASS_INSTALLED: wallet_pass.on_installed,
    EventType.WALLET_PASS_UNINSTALLED: wallet_pass.on_uninstalled,
    EventType.BALANCE_CHANGED: points.on_balance_changed,
    EventType.TIER_CHANGED: tier.on_tier_changed,
    EventType.COUPON_ASSIGNED: coupons.on_assigned,
    EventType.COUPON_PASS_INSTALLED: coupons.on_pass_installed,
    EventType.COUPON_PASS_UNINSTALLED: coupons.on_pass_uninstalled,
    EventType.GIFT_CARD_SENT: gift_cards.on_sent,
    EventType.REWARD_REDEEMABLE: rewards.on_redeemable,
    EventType.REWARD_REDEEMED: rewards.on_redeemed,
    EventType.REWARD_REFUNDED: rewards.on_refunded,
    EventType.WALLET_CLICK: engagement.on_wallet_click,
    EventType.WALLET_VISIT: engagement.on_wallet_visit,
}
assert len(_HANDLERS) == len(EventType)
# Each type's handler and payload reading, found with one lookup: `apply`
# runs once an event in a rebuild, where each call and lookup it saves shows.
_STEPS: dict[EventType, tuple[Handler, Reading]] = {
    kind: (handler, READINGS[kind]) for kind, handler in _HANDLERS.items()
}


def apply(state: CustomerState, event: RecordedEvent) -> LedgerEntry | None:
    """Fold one event of a known type into `state`, in place.

    Raises PoisonEvent (state untouched) for an event whose properties are
    unusable; ValueError for an event of an unknown type or another customer.
    Not idempotent: callers feed each event id once (`fold` dedupes).
    Returns the ledger entry of a `Balance changed`, else None.
    """
    if event.customer_id != state.customer_id:
        raise ValueError(f"event {event.id} is not for {state.customer_id}")
    step = _STEPS.get(event.type)  # type: ignore[arg-type]
    if step is None:
        raise ValueError(f"event {event.id} is of no known type")
    handler, reading = step
    payload = reading.make(reading.properties(event), event.body)  # read_payload
    us = micros(event.created_at)
    entry = handler(state, event, payload, us)
    # The rest cannot raise.
    profile.note_email(state, event, us)
    engagement.note_activity(state, us)
    if event.position > state.position:
        state.position = event.position
    state.event_count += 1
    return entry


@dataclass(slots=True)
class FoldResult:
    state: CustomerState
    ledger: list[LedgerEntry]  # sorted by (created_at, event_id)
    dead: list[tuple[str, str]]  # (event id, reason), sorted


def _ledger_order(entry: LedgerEntry) -> tuple[datetime, str]:
    return (entry.created_at, entry.event_id)


def fold(customer_id: str, events: Iterable[RecordedEvent]) -> FoldResult:
    """The reference read model: a pure function of the set of events.

    Skips unknown types and other customers' events, takes each id once, and
    collects poison events in `dead` instead of applying them.
    """
    state = new_state(customer_id)
    ledger: list[LedgerEntry] = []
    dead: list[tuple[str, str]] = []
    seen: set[str] = set()
    for event in events:
        if event.type is None or event.customer_id != customer_id:
            continue
        if event.id in seen:
            continue
        seen.add(event.id)
        try:
            entry = apply(state, event)
        except PoisonEvent as poison:
            dead.append((event.id, str(poison)))
            continue
        if entry is not None:
            ledger.append(entry)
    ledger.sort(key=_ledger_order)
    dead.sort()
    return FoldResult(state, ledger, dead)


@dataclass(frozen=True, slots=True)
class Customer:
    """The read model as the API serves it."""

    customer_id: str
    email: str | None
    first_name: str | None
    last_name: str | None
    phone_number: str | None
    origin: str | None
    referral: str | None
    utm: Utm
    registered_at: datetime | None
    points_balance: int | Decimal
    points_to_next_reward: int | Decimal | None
    next_reward_name: str | None
    tier: Tier
    wallet_pass: WalletPass
    coupons: tuple[Coupon, ...]  # by code
    coupon_passes_installed: int
    gift_cards: tuple[GiftCard, ...]  # by code
    redeemable_rewards: tuple[RedeemableReward, ...]  # by reward_id
    redeemed_rewards: tuple[RedeemedReward, ...]  # by claim_id
    engagement: Engagement
    birthday: Birthday
    event_count: int
    position: int
    # Not served by the API (nor shown by the CLI): (created_at, id) of the
    # newest event carrying the email, for the store to choose among
    # customers sharing one email.
    email_seen_at: tuple[datetime, str] | None = field(metadata={"internal": True})


def view(state: CustomerState) -> Customer:
    who = profile.profile_view(state)
    balance = points.points_view(state)
    return Customer(
        customer_id=state.customer_id,
        email=who.email,
        first_name=who.first_name,
        last_name=who.last_name,
        phone_number=who.phone_number,
        origin=who.origin,
        referral=who.referral,
        utm=who.utm,
        registered_at=who.registered_at,
        points_balance=balance.points_balance,
        points_to_next_reward=balance.points_to_next_reward,
        next_reward_name=balance.next_reward_name,
        tier=tier.tier_view(state),
        wallet_pass=wallet_pass.wallet_pass_view(state),
        coupons=coupons.coupons_view(state),
        coupon_passes_installed=coupons.passes_installed(state),
        gift_cards=gift_cards.gift_cards_view(state),
        redeemable_rewards=rewards.redeemable_view(state),
        redeemed_rewards=rewards.redeemed_view(state),
        engagement=engagement.engagement_view(state),
        birthday=birthday.birthday_view(state),
        event_count=state.event_count,
        position=state.position,
        email_seen_at=who.email_seen_at,
    )
