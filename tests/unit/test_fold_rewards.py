"""The read-model rules of docs/read-models.md, one example at a time:
rewards, engagement and birthday."""

from __future__ import annotations

from decimal import Decimal

import pytest

from projections.customer import fold
from projections.events import EventType as T
from testkit.examples import at, customer
from testkit.recorded import make_event

# --- rewards -----------------------------------------------------------------


def test_redeemable_rewards_one_per_reward_newest_offer_wins() -> None:
    c = customer(
        make_event(
            T.REWARD_REDEEMABLE,
            id="e1",
            created_at=at(0),
            rewardId="r1",
            rewardCost=100,
        ),
        make_event(
            T.REWARD_REDEEMABLE,
            id="e2",
            created_at=at(2),
            rewardId="r1",
            rewardLink="l",
            rewardTitle="Coffee",
            rewardValue=Decimal("2.50"),
            rewardCost=90,
            customerRemainingBalance=10,
        ),
        make_event(T.REWARD_REDEEMABLE, id="e3", created_at=at(1), rewardId="r0"),
    )
    assert [r.reward_id for r in c.redeemable_rewards] == ["r0", "r1"]
    r1 = c.redeemable_rewards[1]
    assert (r1.reward_link, r1.reward_title, r1.reward_value) == (
        "l",
        "Coffee",
        Decimal("2.5"),
    )
    assert (r1.reward_cost, r1.customer_remaining_balance, r1.offered_at) == (
        90,
        10,
        at(2),
    )


def test_redeemed_rewards_keyed_by_claim_id_else_event_id() -> None:
    c = customer(
        make_event(
            T.REWARD_REDEEMED,
            id="e1",
            created_at=at(0),
            rewardId="r1",
            claimId="k1",
            code="CODE1",
            rewardTitle="Coffee",
            rewardLink="l",
        ),
        make_event(T.REWARD_REDEEMED, id="e2", created_at=at(1), rewardId="r2"),
    )
    assert [(r.claim_id, r.reward_id) for r in c.redeemed_rewards] == [
        ("e2", "r2"),
        ("k1", "r1"),
    ]
    k1 = c.redeemed_rewards[1]
    assert (k1.code, k1.reward_title, k1.reward_link, k1.redeemed_at) == (
        "CODE1",
        "Coffee",
        "l",
        at(0),
    )
    assert (k1.refunded, k1.refunded_at) == (False, None)


def test_refund_before_redemption_counts_once_the_redemption_arrives() -> None:
    refund = make_event(T.REWARD_REFUNDED, id="e1", created_at=at(0), claimId="k1")
    later_refund = make_event(
        T.REWARD_REFUNDED, id="e3", created_at=at(4), claimId="k1"
    )
    redeemed = make_event(
        T.REWARD_REDEEMED, id="e2", created_at=at(2), rewardId="r1", claimId="k1"
    )
    alone = customer(refund)
    assert alone.redeemed_rewards == ()
    assert alone.event_count == 1
    for order in ([refund, redeemed, later_refund], [later_refund, redeemed, refund]):
        (claim,) = customer(*order).redeemed_rewards
        assert (claim.claim_id, claim.refunded, claim.refunded_at) == (
            "k1",
            True,
            at(4),
        )


def test_refund_can_name_a_claim_by_the_redeeming_event_id() -> None:
    (claim,) = customer(
        make_event(T.REWARD_REDEEMED, id="e1", rewardId="r1"),
        make_event(T.REWARD_REFUNDED, id="e2", claimId="e1"),
        make_event(T.REWARD_REFUNDED, id="e3", claimId="other"),
    ).redeemed_rewards
    assert (claim.claim_id, claim.refunded) == ("e1", True)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        (T.REWARD_REDEEMABLE, "rewardId is missing"),
        (T.REWARD_REDEEMED, "rewardId is missing"),
        (T.REWARD_REFUNDED, "claimId is missing"),
    ],
)
def test_rewards_without_their_id_are_poison(kind: T, reason: str) -> None:
    assert fold("c1", [make_event(kind, id="e1")]).dead == [("e1", reason)]


# --- engagement and birthday -------------------------------------------------


def test_engagement_counts_and_last_activity() -> None:
    c = customer(
        make_event(T.CUSTOMER_SCANNED, id="e1", created_at=at(0), location={"lat": 1}),
        make_event(T.CUSTOMER_SCANNED, id="e2", created_at=at(1)),
        make_event(T.CUSTOMER_TAPPED, id="e3", created_at=at(2), device=["x"]),
        make_event(T.WALLET_CLICK, id="e4", created_at=at(3), base={"url": "u"}),
        make_event(T.WALLET_VISIT, id="e5", created_at=at(1), name="home"),
        make_event(T.WALLET_VISIT, id="e6", created_at=at(2)),
        make_event("Points expired", id="e7", created_at=at(9)),
    )
    e = c.engagement
    assert (e.scans, e.taps, e.wallet_clicks, e.wallet_visits) == (2, 1, 1, 2)
    assert e.last_activity_at == at(3)  # the unknown event does not count
    assert c.event_count == 6


def test_birthday_from_the_newest_one() -> None:
    c = customer(
        make_event(T.CUSTOMER_BIRTHDAY, id="e1", created_at=at(5), age=31),
        make_event(T.CUSTOMER_BIRTHDAY, id="e2", created_at=at(0), age=30),
    )
    assert (c.birthday.age, c.birthday.last_celebrated_at) == (31, at(5))
    assert (
        customer(make_event(T.CUSTOMER_BIRTHDAY, id="e1", age="32")).birthday.age == 32
    )
    assert fold(
        "c1", [make_event(T.CUSTOMER_BIRTHDAY, id="e1", age=Decimal("30.5"))]
    ).dead == [("e1", "age is not an integer")]
