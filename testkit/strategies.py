"""Hypothesis strategies for sets of stored events: every event type with
its properties, some spoilt (poison for the fold), in groups of types that
interact, over a few customers and instants so that ties are common.

Used by the property tests of the folds, the projections and erasure.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from projections.events import EventType as T
from projections.events import RecordedEvent
from testkit.recorded import make_event

CUSTOMERS = ("c1", "c2", "c3")
T0 = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)

# Few distinct instants, so that ties on created_at (broken by id) are common.
times = st.sampled_from([T0, T0 + timedelta(microseconds=1), T0 + timedelta(seconds=1)])
words = st.sampled_from(["a", "b", "Gold", "Silver", "ñandú", ""])
maybe_text = st.one_of(st.none(), words, st.integers(0, 99))  # numbers: stringified
# Spoils a property: unusable for a text or number field, or (None) missing.
spoilers = st.sampled_from([{"x": 1}, [1], True, None])
spoils = st.sampled_from([False, False, False, False, False, True])
codes = st.sampled_from(["A", "B", "C", 7])
reward_ids = st.sampled_from(["r1", "r2", 3])
claim_ids = st.sampled_from(["k1", "e01", "e02"])  # eNN: also event ids
money = st.one_of(
    st.integers(-1000, 1000),
    st.decimals(-100, 100, places=2, allow_nan=False, allow_infinity=False),
    st.sampled_from(["10", "0.5", "1e2", "-0.10"]),
)
maybe_money = st.one_of(st.none(), money)


def shape(
    required: dict[str, st.SearchStrategy[Any]] | None = None,
    /,
    **optional: st.SearchStrategy[Any],
) -> st.SearchStrategy[dict[str, Any]]:
    """Properties with the required fields and some of the optional ones; one
    time in six a field is spoilt (which poisons the event if the fold reads
    it, and is kept verbatim otherwise)."""
    good = st.fixed_dictionaries(required or {}, optional=optional).map(dict)
    names = [*(required or {}), *optional]
    if not names:
        return good
    return st.tuples(good, spoils, st.sampled_from(names), spoilers).map(
        lambda t: {**t[0], t[2]: t[3]} if t[1] else t[0]
    )


utm = {"utmSource": maybe_text, "utmMedium": maybe_text, "utmCampaign": maybe_text}
details = {
    k: maybe_text for k in ("header", "body", "slug", "assignedFrom", "installUrl")
}

PROPERTIES: dict[T | str, st.SearchStrategy[dict[str, Any]]] = {
    T.CUSTOMER_CREATED: shape(
        email=maybe_text,
        origin=maybe_text,
        referral=maybe_text,
        firstName=maybe_text,
        lastName=maybe_text,
        phoneNumber=maybe_text,
        **utm,
    ),
    T.CUSTOMER_BIRTHDAY: shape(age=st.one_of(st.integers(0, 99), st.just("41"))),
    T.CUSTOMER_SCANNED: shape(location=st.just({"lat": 1}), device=st.just(["i"])),
    T.CUSTOMER_TAPPED: shape(device=st.just({"os": "ios"})),
    T.WALLET_PASS_REQUESTED: shape(
        downloadLink=maybe_text, email=maybe_text, referral=maybe_text, **utm
    ),
    T.WALLET_PASS_INSTALLED: shape(referral=maybe_text, **utm),
    T.WALLET_PASS_UNINSTALLED: shape(referral=maybe_text, **utm),
    T.BALANCE_CHANGED: shape(
        {"amount": st.one_of(money, money, money, st.just("lots"))},
        reference=maybe_text,
        previousBalance=maybe_money,
        pointsToNextReward=maybe_money,
        nextRewardName=maybe_text,
    ),
    T.TIER_CHANGED: shape(previous=words, current=words),
    T.COUPON_ASSIGNED: shape({"code": codes}, **details),
    T.COUPON_PASS_INSTALLED: shape(code=codes, referral=maybe_text),
    T.COUPON_PASS_UNINSTALLED: shape(code=codes, referral=maybe_text),
    T.GIFT_CARD_SENT: shape({"code": codes}, mailSent=st.booleans(), **details),
    T.REWARD_REDEEMABLE: shape(
        {"rewardId": reward_ids},
        rewardLink=maybe_text,
        rewardTitle=maybe_text,
        rewardValue=maybe_money,
        rewardCost=maybe_money,
        customerRemainingBalance=maybe_money,
    ),
    T.REWARD_REDEEMED: shape(
        {"rewardId": reward_ids},
        claimId=claim_ids,
        code=maybe_text,
        rewardLink=maybe_text,
        rewardTitle=maybe_text,
    ),
    T.REWARD_REFUNDED: shape({"claimId": claim_ids}),
    T.WALLET_CLICK: shape(url=words, browser=words, **utm),
    T.WALLET_VISIT: shape(name=words, url=words, referral=maybe_text, **utm),
    "Points expired": shape(amount=money),  # unknown to the folds
    "balance_changed": shape({"amount": money}),  # a name variant
}
assert all(t in PROPERTIES for t in T)

# Types that interact, drawn together so that they meet (swarm testing).
GROUPS: list[list[T | str]] = [
    [T.BALANCE_CHANGED, "balance_changed", "Points expired"],
    [T.COUPON_ASSIGNED, T.COUPON_PASS_INSTALLED, T.COUPON_PASS_UNINSTALLED],
    [T.REWARD_REDEEMABLE, T.REWARD_REDEEMED, T.REWARD_REFUNDED],
    [T.WALLET_PASS_REQUESTED, T.WALLET_PASS_INSTALLED, T.WALLET_PASS_UNINSTALLED],
    [T.CUSTOMER_CREATED, T.CUSTOMER_BIRTHDAY, T.TIER_CHANGED, T.GIFT_CARD_SENT],
    [T.CUSTOMER_SCANNED, T.CUSTOMER_TAPPED, T.WALLET_CLICK, T.WALLET_VISIT],
]
assert {t for group in GROUPS for t in group} == set(PROPERTIES)

customers = st.sampled_from(["c1", "c1", "c1", "c2", "c3"])  # c1 gets more
emails = st.sampled_from([None, None, "", " ", "a@x.com", "B@x.com"])


def event_specs(kinds: list[T | str]) -> st.SearchStrategy[Any]:
    return st.one_of(
        [st.tuples(st.just(k), customers, times, emails, PROPERTIES[k]) for k in kinds]
    )


@st.composite
def event_sets(draw: st.DrawFn) -> list[RecordedEvent]:
    groups = draw(st.lists(st.sampled_from(GROUPS), min_size=1, max_size=3))
    kinds = [kind for group in groups for kind in group]
    specs = draw(st.lists(event_specs(kinds), min_size=10, max_size=50))
    # Ids in an order unrelated to generation, so id tie-breaks are exercised.
    numbers = draw(st.permutations(range(len(specs))))
    return [
        make_event(
            kind,
            id=f"e{numbers[i]:02d}",
            customer_id=customer,
            created_at=when,
            position=3 * numbers[i] + 1,
            email=email,
            props=properties,
        )
        for i, (kind, customer, when, email, properties) in enumerate(specs)
    ]


# Settings of the property tests: many examples, no deadline (a slow CI
# machine is not a failure).
fast = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
