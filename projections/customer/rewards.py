"""Rewards: offers (one per rewardId) and claims (one per claimId).

A claim is its claimId, else the redeeming event's id. Refunds are kept per
claim even before the claim exists, and show only once it does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ..events import RecordedEvent
from .exact_numbers import load, store
from .fields import key_text, number, text
from .state import CustomerState
from .timekeys import at, newer


@dataclass(frozen=True, slots=True)
class RedeemableReward:
    reward_id: str
    reward_link: str | None
    reward_title: str | None
    reward_value: int | Decimal | None
    reward_cost: int | Decimal | None
    customer_remaining_balance: int | Decimal | None
    offered_at: datetime


@dataclass(frozen=True, slots=True)
class RedeemedReward:
    claim_id: str
    reward_id: str
    reward_link: str | None
    reward_title: str | None
    code: str | None
    redeemed_at: datetime
    refunded: bool
    refunded_at: datetime | None


def on_redeemable(state: CustomerState, event: RecordedEvent, us: int) -> None:
    props = event.properties
    reward_id = key_text(props, "rewardId")
    link = text(props, "rewardLink")
    title = text(props, "rewardTitle")
    value = number(props, "rewardValue")
    cost = number(props, "rewardCost")
    remaining = number(props, "customerRemainingBalance")
    if newer(us, event.id, state.offers.get(reward_id)):
        state.offers[reward_id] = [
            us,
            event.id,
            link,
            title,
            store(value),
            store(cost),
            store(remaining),
        ]


def on_redeemed(state: CustomerState, event: RecordedEvent, us: int) -> None:
    props = event.properties
    reward_id = key_text(props, "rewardId")
    link = text(props, "rewardLink")
    title = text(props, "rewardTitle")
    code = text(props, "code")
    claim_id = text(props, "claimId")
    if claim_id is None or not claim_id.strip():
        claim_id = event.id
    if newer(us, event.id, state.claims.get(claim_id)):
        state.claims[claim_id] = [us, event.id, reward_id, link, title, code]


def on_refunded(state: CustomerState, event: RecordedEvent, us: int) -> None:
    claim_id = key_text(event.properties, "claimId")
    if newer(us, event.id, state.refunds.get(claim_id)):
        state.refunds[claim_id] = [us, event.id]


def redeemable_view(state: CustomerState) -> tuple[RedeemableReward, ...]:
    return tuple(
        RedeemableReward(
            reward_id,
            link,
            title,
            load(value),
            load(cost),
            load(remaining),
            at(us),
        )
        for reward_id, (us, _, link, title, value, cost, remaining) in sorted(
            state.offers.items()
        )
    )


def redeemed_view(state: CustomerState) -> tuple[RedeemedReward, ...]:
    refunds = state.refunds
    claims = []
    for claim_id, (us, _, reward_id, link, title, code) in sorted(state.claims.items()):
        refund = refunds.get(claim_id)
        claims.append(
            RedeemedReward(
                claim_id=claim_id,
                reward_id=reward_id,
                reward_link=link,
                reward_title=title,
                code=code,
                redeemed_at=at(us),
                refunded=refund is not None,
                refunded_at=at(refund[0]) if refund else None,
            )
        )
    return tuple(claims)
