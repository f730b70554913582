"""The read-model rules of docs/read-models.md, one example at a time: the
profile, points and tier."""

from __future__ import annotations

from decimal import Decimal

import pytest

from projections.customer import (
    LedgerEntry,
    PoisonEvent,
    apply,
    encode_state,
    fold,
    new_state,
    view,
)
from projections.events import EventType as T
from testkit.examples import T0, at, customer
from testkit.recorded import make_event

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
