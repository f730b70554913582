"""The mutable state a customer's events fold into.

Only plain JSON values live here (ints, strings, bools, lists, dicts), so the
codec is one json call each way and decoding makes no per-field objects.
Conventions (see timekeys.py and exact_numbers.py):
- a time is int microseconds since the epoch, UTC;
- a register is [us, event_id, *fields], set by the newest event (its sort key
  comes first so that last-writer-wins needs no datetime);
- a number is an int, or a str holding a canonical Decimal.
Field order is the encoding's order: append new fields and bump the codec's
version when it changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Register = list[Any]


@dataclass(slots=True)
class CustomerState:
    customer_id: str
    position: int = 0  # highest global position applied
    event_count: int = 0  # applied events (known type, not poison)
    # profile
    email: Register | None = None  # [us, id, email] from any event's base payload
    created: Register | None = None  # [us, id, first, last, phone, origin,
    #                                   referral, utm_source, utm_medium, utm_campaign]
    # points
    points_sum: int | str = 0  # sum of every amount
    balance: Register | None = None  # [us, id, amount, previous, to_next, next_name]
    # tier
    tier: Register | None = None  # [us, id, current, previous]
    # wallet pass
    pass_requested: Register | None = None  # [us, id, download_link]
    pass_installed: Register | None = None  # [us, id]
    pass_uninstalled: Register | None = None  # [us, id]
    # coupons: code -> [us, id, header, body, slug, assigned_from, install_url]
    coupons: dict[str, Register] = field(default_factory=dict)
    # code -> [us, id, installed]; kept even before the coupon is assigned
    coupon_passes: dict[str, Register] = field(default_factory=dict)
    coupon_installs: int = 0
    coupon_uninstalls: int = 0
    # gift cards: code -> [us, id, header, body, slug, assigned_from,
    #                      install_url, mail_sent]
    gift_cards: dict[str, Register] = field(default_factory=dict)
    # rewards: reward_id -> [us, id, link, title, value, cost, remaining]
    offers: dict[str, Register] = field(default_factory=dict)
    # claim_id -> [us, id, reward_id, link, title, code]
    claims: dict[str, Register] = field(default_factory=dict)
    # claim_id -> [us, id] of its newest refund; kept even before the claim
    refunds: dict[str, Register] = field(default_factory=dict)
    # engagement
    scans: int = 0
    taps: int = 0
    wallet_clicks: int = 0
    wallet_visits: int = 0
    last_activity: int | None = None  # us of the newest applied event
    # birthday
    birthday: Register | None = None  # [us, id, age]


def new_state(customer_id: str) -> CustomerState:
    return CustomerState(customer_id)
