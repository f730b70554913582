"""The mutable state a customer's events fold into.

Only plain JSON values live here (ints, strings, bools, registers, dicts), so
the codec is one json call each way. Conventions (see timekeys.py and
../exact_numbers.py):
- a time is int microseconds since the epoch, UTC;
- a register is a NamedTuple (us, event_id, *fields), set by the newest event
  (its sort key comes first so that last-writer-wins needs no datetime); it
  is encoded as a JSON array in field order;
- a number is an int, or a str holding a canonical Decimal.
Field order (of the state and of each register) is the encoding's order:
append new fields and bump the codec's version when it changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from ..exact_numbers import Stored


class Stamp(NamedTuple):
    """When an event that carries nothing else last happened."""

    us: int
    event_id: str


class EmailSeen(NamedTuple):
    us: int
    event_id: str
    email: str


class Created(NamedTuple):
    us: int
    event_id: str
    first_name: str | None
    last_name: str | None
    phone_number: str | None
    origin: str | None
    referral: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None


class BalanceSet(NamedTuple):
    us: int
    event_id: str
    amount: Stored
    previous: Stored | None
    to_next: Stored | None
    next_name: str | None


class TierSet(NamedTuple):
    us: int
    event_id: str
    current: str | None
    previous: str | None


class PassRequested(NamedTuple):
    us: int
    event_id: str
    download_link: str | None


class CouponSet(NamedTuple):
    us: int
    event_id: str
    header: str | None
    body: str | None
    slug: str | None
    assigned_from: str | None
    install_url: str | None


class CouponPass(NamedTuple):
    us: int
    event_id: str
    installed: bool


class GiftCardSet(NamedTuple):
    us: int
    event_id: str
    header: str | None
    body: str | None
    slug: str | None
    assigned_from: str | None
    install_url: str | None
    mail_sent: bool


class Offer(NamedTuple):
    us: int
    event_id: str
    link: str | None
    title: str | None
    value: Stored | None
    cost: Stored | None
    remaining: Stored | None


class Claim(NamedTuple):
    us: int
    event_id: str
    reward_id: str
    link: str | None
    title: str | None
    code: str | None


class BirthdaySet(NamedTuple):
    us: int
    event_id: str
    age: int | None


@dataclass(slots=True)
class CustomerState:
    customer_id: str
    position: int = 0  # highest global position applied
    event_count: int = 0  # applied events (known type, not poison)
    # profile
    email: EmailSeen | None = None  # from any event's base payload
    created: Created | None = None
    # points
    points_sum: Stored = 0  # sum of every amount
    balance: BalanceSet | None = None
    # tier
    tier: TierSet | None = None
    # wallet pass
    pass_requested: PassRequested | None = None
    pass_installed: Stamp | None = None
    pass_uninstalled: Stamp | None = None
    # coupons by code
    coupons: dict[str, CouponSet] = field(default_factory=dict)
    # by code; kept even before the coupon is assigned
    coupon_passes: dict[str, CouponPass] = field(default_factory=dict)
    coupon_installs: int = 0
    coupon_uninstalls: int = 0
    # gift cards by code
    gift_cards: dict[str, GiftCardSet] = field(default_factory=dict)
    # rewards: offers by reward_id, claims by claim_id
    offers: dict[str, Offer] = field(default_factory=dict)
    claims: dict[str, Claim] = field(default_factory=dict)
    # claim_id -> its newest refund; kept even before the claim
    refunds: dict[str, Stamp] = field(default_factory=dict)
    # engagement
    scans: int = 0
    taps: int = 0
    wallet_clicks: int = 0
    wallet_visits: int = 0
    last_activity: int | None = None  # us of the newest applied event
    # birthday
    birthday: BirthdaySet | None = None


# The register type of each field that holds one (or a map of them), for the
# codec to rebuild from JSON arrays.
REGISTERS: dict[str, type[tuple[object, ...]]] = {
    "email": EmailSeen,
    "created": Created,
    "balance": BalanceSet,
    "tier": TierSet,
    "pass_requested": PassRequested,
    "pass_installed": Stamp,
    "pass_uninstalled": Stamp,
    "birthday": BirthdaySet,
}
REGISTER_MAPS: dict[str, type[tuple[object, ...]]] = {
    "coupons": CouponSet,
    "coupon_passes": CouponPass,
    "gift_cards": GiftCardSet,
    "offers": Offer,
    "claims": Claim,
    "refunds": Stamp,
}


def new_state(customer_id: str) -> CustomerState:
    return CustomerState(customer_id)
