"""The read-model rules of docs/read-models.md, one example at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from projections.customer import (
    Customer,
    LedgerEntry,
    PoisonEvent,
    WalletPassStatus,
    apply,
    decode_state,
    encode_state,
    fold,
    new_state,
    view,
)
from projections.events import EventType as T
from projections.events import RecordedEvent
from testkit.recorded import make_event

T0 = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def customer(*events: RecordedEvent, customer_id: str = "c1") -> Customer:
    result = fold(customer_id, events)
    assert result.dead == []
    return view(result.state)


# --- profile -----------------------------------------------------------------


def test_customer_without_customer_created_exists_from_any_event() -> None:
    c = customer(
        make_event(T.BALANCE_CHANGED, id="e1", email="ana@example.com", amount=5)
    )
    assert c.customer_id == "c1"
    assert c.email == "ana@example.com"
    assert c.email_seen_at == (T0, "e1")
    assert (c.first_name, c.last_name, c.phone_number) == (None, None, None)
    assert (c.origin, c.referral, c.registered_at) == (None, None, None)
    assert (c.utm.source, c.utm.medium, c.utm.campaign) == (None, None, None)
    assert c.event_count == 1
    assert c.engagement.last_activity_at == T0


def test_customer_created_fills_the_profile() -> None:
    c = customer(
        make_event(
            T.CUSTOMER_CREATED,
            id="e1",
            email="ana@example.com",
            created_at=at(1),
            firstName="Ana",
            lastName="Ruiz",
            phoneNumber="+34600000000",
            origin="shopify",
            referral="friend",
            utmSource="ig",
            utmMedium="social",
            utmCampaign="spring",
            props={"email": "ignored@example.com"},
        )
    )
    assert c.email == "ana@example.com"  # the base payload's, not properties'
    assert (c.first_name, c.last_name, c.phone_number) == (
        "Ana",
        "Ruiz",
        "+34600000000",
    )
    assert (c.origin, c.referral) == ("shopify", "friend")
    assert (c.utm.source, c.utm.medium, c.utm.campaign) == ("ig", "social", "spring")
    assert c.registered_at == at(1)


def test_newest_customer_created_wins_whatever_the_order() -> None:
    old = make_event(T.CUSTOMER_CREATED, id="e1", created_at=at(0), firstName="Old")
    new = make_event(T.CUSTOMER_CREATED, id="e2", created_at=at(5), lastName="New")
    for events in ([old, new], [new, old]):
        c = customer(*events)
        assert (c.first_name, c.last_name, c.registered_at) == (None, "New", at(5))


def test_email_change_takes_the_newest_non_empty_email() -> None:
    first = make_event(T.CUSTOMER_CREATED, id="e1", created_at=at(0), email="a@x.com")
    changed = make_event(T.CUSTOMER_TAPPED, id="e2", created_at=at(2), email="b@x.com")
    blank = make_event(T.CUSTOMER_SCANNED, id="e3", created_at=at(3), email="  ")
    absent = make_event(T.WALLET_CLICK, id="e4", created_at=at(4))
    for events in ([first, changed, blank, absent], [absent, blank, changed, first]):
        c = customer(*events)
        assert c.email == "b@x.com"
        assert c.email_seen_at == (at(2), "e2")


def test_email_tie_on_created_at_is_broken_by_id() -> None:
    a = make_event(T.CUSTOMER_TAPPED, id="b-2", email="two@x.com")
    b = make_event(T.CUSTOMER_TAPPED, id="a-1", email="one@x.com")
    assert customer(a, b).email == customer(b, a).email == "two@x.com"


def test_numbers_in_text_fields_are_stringified_objects_are_poison() -> None:
    c = customer(make_event(T.CUSTOMER_CREATED, id="e1", phoneNumber=600123123))
    assert c.phone_number == "600123123"
    result = fold("c1", [make_event(T.CUSTOMER_CREATED, id="e1", firstName={"a": 1})])
    assert result.dead == [("e1", "firstName is not a string")]
    assert result.state.event_count == 0


# --- points ------------------------------------------------------------------


def test_balance_without_previous_balance_is_the_sum_of_amounts() -> None:
    c = customer(
        make_event(T.BALANCE_CHANGED, id="e1", created_at=at(0), amount=10),
        make_event(T.BALANCE_CHANGED, id="e2", created_at=at(1), amount=-3),
        make_event(
            T.BALANCE_CHANGED,
            id="e3",
            created_at=at(2),
            amount=20,
            pointsToNextReward=73,
            nextRewardName="Coffee",
        ),
    )
    assert c.points_balance == 27
    assert type(c.points_balance) is int
    assert (c.points_to_next_reward, c.next_reward_name) == (73, "Coffee")


def test_balance_uses_previous_balance_of_the_newest_change() -> None:
    events = [
        make_event(T.BALANCE_CHANGED, id="e1", created_at=at(0), amount=10),
        make_event(
            T.BALANCE_CHANGED, id="e2", created_at=at(2), amount=5, previousBalance=500
        ),
        make_event(
            T.BALANCE_CHANGED, id="e3", created_at=at(1), amount=7, previousBalance=9
        ),
    ]
    assert customer(*events).points_balance == 505
    assert customer(*reversed(events)).points_balance == 505


def test_previous_balance_on_an_older_change_only_is_ignored() -> None:
    c = customer(
        make_event(
            T.BALANCE_CHANGED, id="e1", created_at=at(0), amount=10, previousBalance=90
        ),
        make_event(T.BALANCE_CHANGED, id="e2", created_at=at(1), amount=1),
    )
    assert c.points_balance == 11


def test_no_balance_changed_means_zero_points() -> None:
    c = customer(make_event(T.CUSTOMER_TAPPED, id="e1"))
    assert c.points_balance == 0
    assert (c.points_to_next_reward, c.next_reward_name) == (None, None)


def test_points_arithmetic_is_exact_and_integral_results_are_ints() -> None:
    c = customer(
        make_event(T.BALANCE_CHANGED, id="e1", amount=Decimal("0.1")),
        make_event(T.BALANCE_CHANGED, id="e2", amount=Decimal("0.2")),
        make_event(T.BALANCE_CHANGED, id="e3", amount="10"),
    )
    assert c.points_balance == Decimal("10.3")
    c = customer(
        make_event(T.BALANCE_CHANGED, id="e1", amount=Decimal("1.50")),
        make_event(T.BALANCE_CHANGED, id="e2", amount=Decimal("1.5")),
    )
    assert c.points_balance == 3
    assert type(c.points_balance) is int


def test_big_sums_stay_exact() -> None:
    big = 9 * 10**29  # near the bound on one amount; their sum is beyond it
    c = customer(
        make_event(T.BALANCE_CHANGED, id="e1", amount=big),
        make_event(T.BALANCE_CHANGED, id="e2", amount=big),
        make_event(T.BALANCE_CHANGED, id="e3", amount=Decimal("0.000001")),
    )
    # (the default decimal context, 28 digits, could not even add these)
    assert c.points_balance == Decimal(f"{2 * big}.000001")


def test_ledger_lists_every_change_oldest_first() -> None:
    result = fold(
        "c1",
        [
            make_event(
                T.BALANCE_CHANGED,
                id="e2",
                created_at=at(1),
                position=7,
                amount=5,
                reference="order-2",
                previousBalance=10,
                pointsToNextReward=Decimal("2.5"),
                nextRewardName="Mug",
            ),
            make_event(T.BALANCE_CHANGED, id="e1", created_at=at(0), amount=10),
            make_event(T.TIER_CHANGED, id="e3", created_at=at(2), current="Gold"),
        ],
    )
    assert result.ledger == [
        LedgerEntry("e1", 1, at(0), 10, None, None, None, None),
        LedgerEntry("e2", 7, at(1), 5, "order-2", 10, Decimal("2.5"), "Mug"),
    ]


@pytest.mark.parametrize(
    ("properties", "reason"),
    [
        ({"amount": "lots"}, "amount is not a number"),
        ({}, "amount is missing"),
        ({"amount": None}, "amount is missing"),
        ({"amount": True}, "amount is not a number"),
        ({"amount": "NaN"}, "amount is not a number"),
        ({"amount": [1]}, "amount is not a number"),
        ({"amount": 10**40}, "amount is out of range"),
        ({"amount": 5, "previousBalance": "x"}, "previousBalance is not a number"),
        ({"amount": 5, "reference": {"id": 1}}, "reference is not a string"),
    ],
)
def test_unusable_balance_change_is_poison_and_leaves_state_untouched(
    properties: dict[str, object], reason: str
) -> None:
    good = make_event(T.BALANCE_CHANGED, id="e1", created_at=at(0), amount=10)
    bad = make_event(
        T.BALANCE_CHANGED, id="e9", created_at=at(5), position=9, props=properties
    )
    state = new_state("c1")
    apply(state, good)
    before = encode_state(state)
    with pytest.raises(PoisonEvent) as caught:
        apply(state, bad)
    assert str(caught.value) == reason
    assert encode_state(state) == before

    result = fold("c1", [bad, good, make_event(T.CUSTOMER_TAPPED, id="e3")])
    assert result.dead == [("e9", reason)]
    c = view(result.state)
    assert (c.points_balance, c.event_count, c.position, c.engagement.taps) == (
        10,
        2,
        1,
        1,
    )
    assert [entry.event_id for entry in result.ledger] == ["e1"]


# --- tier --------------------------------------------------------------------


def test_tier_comes_from_the_newest_tier_changed() -> None:
    events = [
        make_event(
            T.TIER_CHANGED, id="e1", created_at=at(3), previous="Silver", current="Gold"
        ),
        make_event(
            T.TIER_CHANGED,
            id="e2",
            created_at=at(1),
            previous="Bronze",
            current="Silver",
        ),
    ]
    for order in (events, events[::-1]):
        tier = customer(*order).tier
        assert (tier.current, tier.previous, tier.changed_at) == (
            "Gold",
            "Silver",
            at(3),
        )
    assert customer(make_event(T.CUSTOMER_TAPPED, id="e1")).tier.current is None


# --- wallet pass -------------------------------------------------------------


def test_wallet_pass_none_then_requested() -> None:
    assert customer(make_event(T.CUSTOMER_TAPPED, id="e0")).wallet_pass.status == (
        WalletPassStatus.NONE
    )
    wallet = customer(
        make_event(
            T.WALLET_PASS_REQUESTED, id="e1", created_at=at(0), downloadLink="old"
        ),
        make_event(
            T.WALLET_PASS_REQUESTED, id="e2", created_at=at(1), downloadLink="new"
        ),
    ).wallet_pass
    assert wallet.status == WalletPassStatus.REQUESTED == "REQUESTED"
    assert (wallet.download_link, wallet.requested_at) == ("new", at(1))
    assert (wallet.installed_at, wallet.uninstalled_at) == (None, None)


def test_wallet_pass_newest_of_installed_and_uninstalled_decides() -> None:
    requested = make_event(T.WALLET_PASS_REQUESTED, id="e1", created_at=at(0))
    installed = make_event(T.WALLET_PASS_INSTALLED, id="e2", created_at=at(1))
    uninstalled = make_event(T.WALLET_PASS_UNINSTALLED, id="e3", created_at=at(2))
    reinstalled = make_event(T.WALLET_PASS_INSTALLED, id="e4", created_at=at(3))

    wallet = customer(uninstalled, installed, requested).wallet_pass
    assert wallet.status == WalletPassStatus.UNINSTALLED
    assert (wallet.installed_at, wallet.uninstalled_at) == (at(1), at(2))
    assert wallet.download_link is None

    wallet = customer(reinstalled, uninstalled, installed).wallet_pass
    assert wallet.status == WalletPassStatus.INSTALLED
    assert (wallet.installed_at, wallet.requested_at) == (at(3), None)


def test_wallet_pass_install_and_uninstall_at_one_instant_tie_on_id() -> None:
    installed = make_event(T.WALLET_PASS_INSTALLED, id="e2")
    uninstalled = make_event(T.WALLET_PASS_UNINSTALLED, id="e1")
    assert customer(installed, uninstalled).wallet_pass.status == "INSTALLED"
    uninstalled = make_event(T.WALLET_PASS_UNINSTALLED, id="e3")
    assert customer(uninstalled, installed).wallet_pass.status == "UNINSTALLED"


# --- coupons -----------------------------------------------------------------


def coupon(code: str, id: str, minute: int, **properties: Any) -> RecordedEvent:
    return make_event(
        T.COUPON_ASSIGNED, id=id, created_at=at(minute), code=code, **properties
    )


def coupon_pass(
    kind: T, id: str, minute: int, code: str | None = None
) -> RecordedEvent:
    props = {} if code is None else {"code": code}
    return make_event(kind, id=id, created_at=at(minute), props=props)


def test_coupons_one_per_code_newest_assignment_wins_sorted_by_code() -> None:
    c = customer(
        coupon("B", "e1", 0, header="old"),
        coupon("B", "e2", 2, header="new", body="b", slug="s", assignedFrom="x"),
        coupon("A", "e3", 1, installUrl="https://pass/a"),
    )
    assert [x.code for x in c.coupons] == ["A", "B"]
    a, b = c.coupons
    assert (a.install_url, a.assigned_at, a.header) == ("https://pass/a", at(1), None)
    assert (b.header, b.body, b.slug, b.assigned_from, b.assigned_at) == (
        "new",
        "b",
        "s",
        "x",
        at(2),
    )
    assert not a.pass_installed and not b.pass_installed


def test_coupon_pass_events_with_code_set_pass_installed_even_if_early() -> None:
    installed = coupon_pass(T.COUPON_PASS_INSTALLED, "e1", 0, code="A")
    assigned = coupon("A", "e2", 5)
    for order in ([installed, assigned], [assigned, installed]):
        c = customer(*order)
        assert c.coupons[0].pass_installed
        assert c.coupon_passes_installed == 1
    uninstalled = coupon_pass(T.COUPON_PASS_UNINSTALLED, "e3", 1, code="A")
    c = customer(uninstalled, assigned, installed)
    assert not c.coupons[0].pass_installed
    assert c.coupon_passes_installed == 0


def test_coupon_pass_events_without_code_only_count() -> None:
    c = customer(
        coupon("A", "e1", 0),
        coupon_pass(T.COUPON_PASS_INSTALLED, "e2", 1),
        coupon_pass(T.COUPON_PASS_INSTALLED, "e3", 2),
        coupon_pass(T.COUPON_PASS_UNINSTALLED, "e4", 3),
        coupon_pass(T.COUPON_PASS_INSTALLED, "e5", 4, code="Z"),
    )
    assert c.coupon_passes_installed == 2
    assert [(x.code, x.pass_installed) for x in c.coupons] == [("A", False)]


def test_coupon_passes_installed_never_goes_negative() -> None:
    c = customer(
        coupon_pass(T.COUPON_PASS_UNINSTALLED, "e1", 0),
        coupon_pass(T.COUPON_PASS_UNINSTALLED, "e2", 1),
        coupon_pass(T.COUPON_PASS_INSTALLED, "e3", 2),
    )
    assert c.coupon_passes_installed == 0


def test_coupon_without_code_is_poison() -> None:
    result = fold("c1", [make_event(T.COUPON_ASSIGNED, id="e1", header="h")])
    assert result.dead == [("e1", "code is missing")]
    result = fold("c1", [make_event(T.COUPON_ASSIGNED, id="e1", code=" ")])
    assert result.dead == [("e1", "code is missing")]
    assert (
        customer(make_event(T.COUPON_ASSIGNED, id="e1", code=42)).coupons[0].code
        == "42"
    )


# --- gift cards --------------------------------------------------------------


def test_gift_cards_one_per_code_newest_wins() -> None:
    c = customer(
        make_event(
            T.GIFT_CARD_SENT, id="e1", created_at=at(0), code="G2", mailSent=False
        ),
        make_event(
            T.GIFT_CARD_SENT,
            id="e2",
            created_at=at(3),
            code="G2",
            header="h",
            body="b",
            slug="s",
            assignedFrom="a",
            installUrl="u",
            mailSent=True,
        ),
        make_event(T.GIFT_CARD_SENT, id="e3", created_at=at(1), code="G1"),
    )
    assert [(g.code, g.mail_sent, g.sent_at) for g in c.gift_cards] == [
        ("G1", False, at(1)),
        ("G2", True, at(3)),
    ]
    g2 = c.gift_cards[1]
    assert (g2.header, g2.body, g2.slug, g2.assigned_from, g2.install_url) == (
        "h",
        "b",
        "s",
        "a",
        "u",
    )


def test_gift_card_without_code_or_with_odd_mail_sent_is_poison() -> None:
    result = fold(
        "c1",
        [
            make_event(T.GIFT_CARD_SENT, id="e1"),
            make_event(T.GIFT_CARD_SENT, id="e2", code="G", mailSent="maybe"),
        ],
    )
    assert result.dead == [
        ("e1", "code is missing"),
        ("e2", "mailSent is not a boolean"),
    ]


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


# --- fold and apply ----------------------------------------------------------


def test_unknown_types_other_customers_and_duplicates_are_skipped() -> None:
    balance = make_event(T.BALANCE_CHANGED, id="e1", position=3, amount=10)
    result = fold(
        "c1",
        [
            balance,
            balance,
            make_event("Points expired", id="e2", position=50, amount=99),
            make_event(
                T.BALANCE_CHANGED, id="e3", customer_id="c2", position=60, amount=1
            ),
            make_event("balance_changed", id="e4", position=5, amount=1),
        ],
    )
    c = view(result.state)
    assert (c.points_balance, c.event_count, c.position) == (11, 2, 5)
    assert [entry.event_id for entry in result.ledger] == ["e1", "e4"]
    assert result.dead == []


def test_apply_returns_ledger_entries_for_balance_changes_only() -> None:
    state = new_state("c1")
    assert apply(state, make_event(T.CUSTOMER_TAPPED, id="e1")) is None
    entry = apply(state, make_event(T.BALANCE_CHANGED, id="e2", position=4, amount=2))
    assert entry == LedgerEntry("e2", 4, T0, 2, None, None, None, None)
    assert (state.event_count, state.position) == (2, 4)


def test_apply_refuses_another_customers_event() -> None:
    with pytest.raises(ValueError, match="not for c1"):
        apply(new_state("c1"), make_event(T.CUSTOMER_TAPPED, id="e1", customer_id="c2"))


def test_apply_refuses_an_unknown_type() -> None:
    with pytest.raises(ValueError, match="no known type"):
        apply(new_state("c1"), make_event("Points expired", id="e1"))


def test_naive_and_offset_times_are_taken_as_instants() -> None:
    c = customer(
        make_event(
            T.TIER_CHANGED, id="e1", created_at="2026-03-08T13:30:00+02:00", current="A"
        ),
        make_event(
            T.TIER_CHANGED, id="e2", created_at="2026-03-08T12:00:00", current="B"
        ),
    )
    assert (c.tier.current, c.tier.changed_at) == ("B", T0)


# --- codec -------------------------------------------------------------------


def test_state_round_trips_through_bytes() -> None:
    result = fold(
        "c1",
        [
            make_event(T.CUSTOMER_CREATED, id="e1", email="ñ@x.com", firstName="Zoë"),
            make_event(T.BALANCE_CHANGED, id="e2", amount=Decimal("1.25")),
            make_event(T.COUPON_PASS_INSTALLED, id="e3", code="A"),
            make_event(T.REWARD_REFUNDED, id="e4", claimId="k"),
        ],
    )
    data = encode_state(result.state)
    assert isinstance(data, bytes)
    assert decode_state(data) == result.state
    assert view(decode_state(data)) == view(result.state)


def test_decode_refuses_other_bytes() -> None:
    for data in (
        b"[]",
        b'{"a":1}',
        b"[2]",
        b"[1]",
        b"[2,",
        b"[3," + encode_state(new_state("c"))[3:],
        encode_state(new_state("c"))[:-1] + b",1]",
    ):
        with pytest.raises(ValueError):
            decode_state(data)


def test_states_orjson_refuses_round_trip_exactly() -> None:
    """Ints beyond 64 bits and lone surrogates: orjson cannot write them (and
    would read a big int back as a float), so the stdlib writes version 1."""
    huge = 10**29  # within the fold's range (10**30), far beyond 64 bits
    result = fold(
        "c1",
        [
            make_event(T.CUSTOMER_CREATED, id="e1", firstName="Zo\ud800"),
            make_event(T.BALANCE_CHANGED, id="e2", amount=huge),
        ],
    )
    data = encode_state(result.state)
    assert data.startswith(b"[1,")
    back = decode_state(data)
    assert back == result.state
    assert view(back).points_balance == huge
    assert type(view(back).points_balance) is int


def test_version_1_states_from_before_orjson_still_decode() -> None:
    state = fold("c1", [make_event(T.CUSTOMER_CREATED, id="e1", email="a@x.com")]).state
    data = encode_state(state)
    assert data.startswith(b"[2,")
    import json

    old = json.dumps(
        [1, *json.loads(data)[1:]], separators=(",", ":"), sort_keys=True
    ).encode()
    assert decode_state(old) == state
