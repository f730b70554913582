"""The conversion of read models to their gRPC messages: every field of a
customer, the numbers convention, the ledger. Stored events and event types
are in test_convert_events.py."""

from __future__ import annotations

from decimal import Decimal

import pytest
from jericommerce.loyalty.v1 import customer_pb2

from projections.customer import fold
from projections.events import EventType as T
from projections.events import RecordedEvent
from service.rpc import convert
from testkit.examples import at
from testkit.protoshapes import all_fields, roundtrip, set_fields, ts
from testkit.recorded import make_event

INT64_MAX = 2**63 - 1


# --- customers -----------------------------------------------------------------


def customer(*events: RecordedEvent) -> customer_pb2.Customer:
    """The message the service sends for customer c1 after these events."""
    result = fold("c1", events)
    assert result.dead == []
    return convert.customer_from_state(result.state)


def full_customer() -> customer_pb2.Customer:
    e = make_event
    return customer(
        e(
            T.CUSTOMER_CREATED,
            id="e01",
            created_at=at(0),
            email="ana@example.com",
            firstName="Ana",
            lastName="Ruiz",
            phoneNumber="+34600000000",
            origin="shopify",
            referral="friend",
            utmSource="ig",
            utmMedium="social",
            utmCampaign="spring",
        ),
        e(T.BALANCE_CHANGED, id="e02", created_at=at(1), amount=20, reference="o-1"),
        e(
            T.BALANCE_CHANGED,
            id="e03",
            created_at=at(2),
            amount=Decimal("-9.5"),
            pointsToNextReward=Decimal("89.5"),
            nextRewardName="Free coffee",
        ),
        e(
            T.TIER_CHANGED,
            id="e04",
            created_at=at(3),
            current="Gold",
            previous="Silver",
        ),
        e(
            T.WALLET_PASS_REQUESTED,
            id="e05",
            created_at=at(4),
            downloadLink="https://d",
        ),
        e(T.WALLET_PASS_UNINSTALLED, id="e06", created_at=at(5)),
        e(T.WALLET_PASS_INSTALLED, id="e07", created_at=at(6)),
        e(
            T.COUPON_ASSIGNED,
            id="e08",
            created_at=at(7),
            code="SPRING",
            header="10% off",
            body="Spring sale",
            slug="spring",
            assignedFrom="campaign",
            installUrl="https://i/spring",
        ),
        e(T.COUPON_ASSIGNED, id="e09", created_at=at(8), code="AAA"),
        e(T.COUPON_PASS_INSTALLED, id="e10", created_at=at(9), code="SPRING"),
        e(
            T.GIFT_CARD_SENT,
            id="e11",
            created_at=at(10),
            code="GC1",
            header="Gift",
            body="For you",
            slug="gift",
            assignedFrom="admin",
            installUrl="https://i/gc1",
            mailSent=True,
        ),
        e(
            T.REWARD_REDEEMABLE,
            id="e12",
            created_at=at(11),
            rewardId="r1",
            rewardLink="https://r/1",
            rewardTitle="Coffee",
            rewardValue=Decimal("10.5"),
            rewardCost=Decimal("-7.5"),
            customerRemainingBalance=3,
        ),
        e(
            T.REWARD_REDEEMED,
            id="e13",
            created_at=at(12),
            rewardId="r1",
            rewardLink="https://r/1",
            rewardTitle="Coffee",
            code="RC-1",
            claimId="cl1",
        ),
        e(T.REWARD_REFUNDED, id="e14", created_at=at(13), claimId="cl1"),
        e(T.CUSTOMER_SCANNED, id="e15", created_at=at(14)),
        e(T.CUSTOMER_TAPPED, id="e16", created_at=at(15)),
        e(T.WALLET_CLICK, id="e17", created_at=at(16)),
        e(T.WALLET_VISIT, id="e18", created_at=at(17), position=42),
        e(T.CUSTOMER_BIRTHDAY, id="e19", created_at=at(18), age=30),
    )


def test_full_customer_sets_every_contract_field() -> None:
    m = roundtrip(full_customer())
    assert isinstance(m, customer_pb2.Customer)
    # Every field carries a non-default value, so none was forgotten.
    assert set_fields(m) == all_fields(m)
    assert m.customer_id == "c1"
    assert m.email == "ana@example.com"
    assert (m.first_name, m.last_name, m.phone_number) == (
        "Ana",
        "Ruiz",
        "+34600000000",
    )
    assert (m.origin, m.referral) == ("shopify", "friend")
    assert (m.utm.source, m.utm.medium, m.utm.campaign) == ("ig", "social", "spring")
    assert m.registered_at == ts(at(0))
    # 20 - 9.5 = 10.5: whole part and exact text.
    assert (m.points_balance, m.points_balance_decimal) == (10, "10.5")
    assert m.HasField("points_to_next_reward")
    assert (m.points_to_next_reward, m.points_to_next_reward_decimal) == (89, "89.5")
    assert m.next_reward_name == "Free coffee"
    assert (m.tier.current, m.tier.previous) == ("Gold", "Silver")
    assert m.tier.changed_at == ts(at(3))
    w = m.wallet_pass
    assert set_fields(w) == all_fields(w)
    assert w.status == customer_pb2.WALLET_PASS_STATUS_INSTALLED
    assert w.download_link == "https://d"
    assert (w.requested_at, w.uninstalled_at, w.installed_at) == (
        ts(at(4)),
        ts(at(5)),
        ts(at(6)),
    )
    assert [c.code for c in m.coupons] == ["AAA", "SPRING"]
    spring = m.coupons[1]
    assert set_fields(spring) == all_fields(spring)
    assert (spring.header, spring.body, spring.slug) == (
        "10% off",
        "Spring sale",
        "spring",
    )
    assert (spring.assigned_from, spring.install_url) == (
        "campaign",
        "https://i/spring",
    )
    assert spring.assigned_at == ts(at(7))
    assert spring.pass_installed is True
    assert m.coupons[0].pass_installed is False
    assert m.coupons[0].header == ""  # None -> empty
    assert m.coupon_passes_installed == 1
    (gift,) = m.gift_cards
    assert set_fields(gift) == all_fields(gift)
    assert (gift.code, gift.header, gift.body, gift.slug) == (
        "GC1",
        "Gift",
        "For you",
        "gift",
    )
    assert (gift.assigned_from, gift.install_url) == ("admin", "https://i/gc1")
    assert (gift.mail_sent, gift.sent_at) == (True, ts(at(10)))
    (offer,) = m.redeemable_rewards
    assert set_fields(offer) == all_fields(offer)
    assert (offer.reward_id, offer.reward_link, offer.reward_title) == (
        "r1",
        "https://r/1",
        "Coffee",
    )
    assert (offer.reward_value, offer.reward_value_decimal) == (10, "10.5")
    assert (offer.reward_cost, offer.reward_cost_decimal) == (-7, "-7.5")  # to zero
    assert offer.customer_remaining_balance == 3
    assert offer.customer_remaining_balance_decimal == "3"
    assert offer.offered_at == ts(at(11))
    (claim,) = m.redeemed_rewards
    assert set_fields(claim) == all_fields(claim)
    assert (claim.claim_id, claim.reward_id, claim.code) == ("cl1", "r1", "RC-1")
    assert (claim.reward_link, claim.reward_title) == ("https://r/1", "Coffee")
    assert (claim.redeemed_at, claim.refunded, claim.refunded_at) == (
        ts(at(12)),
        True,
        ts(at(13)),
    )
    g = m.engagement
    assert (g.scans, g.taps, g.wallet_clicks, g.wallet_visits) == (1, 1, 1, 1)
    assert g.last_activity_at == ts(at(18))
    assert m.birthday.age == 30
    assert m.birthday.last_celebrated_at == ts(at(18))
    assert (m.event_count, m.position) == (19, 42)


def test_customer_with_only_a_scan_leaves_optional_parts_unset() -> None:
    c = customer(make_event(T.CUSTOMER_SCANNED, id="e1", created_at=at(1)))
    m = roundtrip(c)
    for name in ("utm", "registered_at", "tier", "birthday", "points_to_next_reward"):
        assert not m.HasField(name), name
    assert (m.points_balance, m.points_balance_decimal) == (0, "0")
    assert m.points_to_next_reward_decimal == ""
    assert m.email == m.first_name == m.next_reward_name == ""
    # Always set, per the proto.
    assert m.HasField("wallet_pass") and m.HasField("engagement")
    assert m.wallet_pass.status == customer_pb2.WALLET_PASS_STATUS_NONE
    assert set_fields(m.wallet_pass) == {"status"}
    assert m.engagement.scans == 1
    assert m.engagement.last_activity_at == ts(at(1))
    assert not m.coupons and not m.gift_cards
    assert not m.redeemable_rewards and not m.redeemed_rewards
    assert (m.event_count, m.position) == (1, 1)


def test_parts_whose_event_came_without_details_are_set_but_empty() -> None:
    c = customer(
        make_event(T.CUSTOMER_CREATED, id="e1", created_at=at(1)),
        make_event(T.TIER_CHANGED, id="e2", created_at=at(2)),
        make_event(T.CUSTOMER_BIRTHDAY, id="e3", created_at=at(3)),
        make_event(T.WALLET_PASS_REQUESTED, id="e4", created_at=at(4)),
        make_event(T.REWARD_REDEEMABLE, id="e5", created_at=at(5), rewardId="r"),
    )
    m = c
    assert m.HasField("utm") and m.registered_at == ts(at(1))
    assert m.HasField("tier") and m.tier.current == ""
    assert m.tier.changed_at == ts(at(2))
    assert m.HasField("birthday") and not m.birthday.HasField("age")
    assert m.wallet_pass.status == customer_pb2.WALLET_PASS_STATUS_REQUESTED
    (offer,) = m.redeemable_rewards
    for name in ("reward_value", "reward_cost", "customer_remaining_balance"):
        assert not offer.HasField(name)
        assert getattr(offer, f"{name}_decimal") == ""


def test_wallet_pass_uninstalled_status() -> None:
    c = customer(
        make_event(T.WALLET_PASS_INSTALLED, id="e1", created_at=at(1)),
        make_event(T.WALLET_PASS_UNINSTALLED, id="e2", created_at=at(2)),
    )
    m = c
    assert m.wallet_pass.status == customer_pb2.WALLET_PASS_STATUS_UNINSTALLED


@pytest.mark.parametrize(
    ("number", "whole", "text"),
    [
        (0, 0, "0"),
        (-3, -3, "-3"),
        (Decimal("10.5"), 10, "10.5"),
        (Decimal("-7.5"), -7, "-7.5"),
        (Decimal("-0.25"), 0, "-0.25"),
        (Decimal("1.50"), 1, "1.5"),  # not canonical on the way in: made so
        (Decimal("1E+2"), 100, "100"),  # never an exponent
        (Decimal("1E-7"), 0, "0.0000001"),
        (Decimal("-0.0"), 0, "0"),
        (10**20, INT64_MAX, "100000000000000000000"),  # saturated; text exact
        (-(10**20), -(2**63), "-100000000000000000000"),
    ],
)
def test_numbers_convention(number: int | Decimal, whole: int, text: str) -> None:
    assert convert.scalars.number("amount", number) == {
        "amount": whole,
        "amount_decimal": text,
    }


def test_ledger_entry_to_proto() -> None:
    e = make_event
    ledger = fold(
        "c1",
        [
            e(T.BALANCE_CHANGED, id="e1", created_at=at(1), position=7, amount=10),
            e(
                T.BALANCE_CHANGED,
                id="e2",
                created_at=at(2),
                position=9,
                amount=Decimal("-7.5"),
                previousBalance=Decimal("12.25"),
                pointsToNextReward=40,
                nextRewardName="Mug",
                reference="refund-3",
            ),
        ],
    ).ledger
    first, second = (roundtrip(convert.ledger_entry_to_proto(x)) for x in ledger)
    assert (first.event_id, first.position, first.created_at) == ("e1", 7, ts(at(1)))
    assert (first.amount, first.amount_decimal, first.reference) == (10, "10", "")
    assert not first.HasField("previous_balance")
    assert not first.HasField("points_to_next_reward")
    assert first.previous_balance_decimal == first.points_to_next_reward_decimal == ""
    assert set_fields(second) == all_fields(second)
    assert (second.amount, second.amount_decimal) == (-7, "-7.5")
    assert (second.previous_balance, second.previous_balance_decimal) == (12, "12.25")
    assert second.points_to_next_reward == 40
    assert second.points_to_next_reward_decimal == "40"
    assert (second.next_reward_name, second.reference) == ("Mug", "refund-3")
