"""Rewards: offers (one per rewardId) and claims (one per claimId).

A claim is its claimId, else the redeeming event's id. Refunds are kept per
claim even before the claim exists, and show only once it does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ..events import RecordedEvent
from ..exact_numbers import load, store
from ..payload_types import RewardRedeemable, RewardRedeemed, RewardRefunded
from .state import Claim, CustomerState, Offer, Stamp
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


def on_redeemable(
    state: CustomerState, event: RecordedEvent, p: RewardRedeemable, us: int
) -> None:
    reward_id = p.reward_id
    if newer(us, event.id, state.offers.get(reward_id)):
        state.offers[reward_id] = Offer(
            us,
            event.id,
            p.reward_link,
            p.reward_title,
            store(p.reward_value),
            store(p.reward_cost),
            store(p.customer_remaining_balance),
        )


def on_redeemed(
    state: CustomerState, event: RecordedEvent, p: RewardRedeemed, us: int
) -> None:
    claim_id = p.claim_id
    if claim_id is None or not claim_id.strip():
        claim_id = event.id
    if newer(us, event.id, state.claims.get(claim_id)):
        state.claims[claim_id] = Claim(
            us, event.id, p.reward_id, p.reward_link, p.reward_title, p.code
        )


def on_refunded(
    state: CustomerState, event: RecordedEvent, p: RewardRefunded, us: int
) -> None:
    claim_id = p.claim_id
    if newer(us, event.id, state.refunds.get(claim_id)):
        state.refunds[claim_id] = Stamp(us, event.id)


def redeemable_view(state: CustomerState) -> tuple[RedeemableReward, ...]:
    return tuple(
        RedeemableReward(
            reward_id,
            offer.link,
            offer.title,
            load(offer.value),
            load(offer.cost),
            load(offer.remaining),
            at(offer.us),
        )
        for reward_id, offer in sorted(state.offers.items())
    )


def redeemed_view(state: CustomerState) -> tuple[RedeemedReward, ...]:
    refunds = state.refunds
    claims = []
    for claim_id, claim in sorted(state.claims.items()):
        refund = refunds.get(claim_id)
        claims.append(
            RedeemedReward(
                claim_id=claim_id,
                reward_id=claim.reward_id,
                reward_link=claim.link,
                reward_title=claim.title,
                code=claim.code,
                redeemed_at=at(claim.us),
                refunded=refund is not None,
                refunded_at=at(refund.us) if refund else None,
            )
        )
    return tuple(claims)
