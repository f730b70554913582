"""The stored answer built straight from the fold state is, byte for byte,
the message a call builds through the view (`customer_to_proto(view(s))`)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from projections.customer.model import fold, view
from projections.customer.state import (
    BalanceSet,
    BirthdaySet,
    Claim,
    CouponSet,
    Created,
    CustomerState,
    Offer,
    Stamp,
    TierSet,
)
from projections.events import RecordedEvent
from service.rpc.answers import encode_answer
from testkit.customer_message import customer_to_proto
from testkit.strategies import CUSTOMERS, event_sets, fast


def through_view(state: CustomerState) -> bytes:
    return customer_to_proto(view(state)).SerializeToString()


@fast
@given(events=event_sets())
def test_the_answer_is_the_views_message_for_any_set_of_events(
    events: list[RecordedEvent],
) -> None:
    for customer in (*CUSTOMERS, "nobody"):
        state = fold(customer, events).state
        assert encode_answer(state) == through_view(state)


# Anywhere in datetime's range, the epoch itself and times just before it
# (negative seconds, where floor division matters) included.
instants = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.just(UTC),
    ),
    st.integers(-3_000_000, 3_000_000).map(
        lambda us: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
    ),
)


@fast
@given(events=event_sets(), data=st.data())
def test_the_answer_is_the_views_message_at_any_time(
    events: list[RecordedEvent], data: st.DataObject
) -> None:
    moved = [dataclasses.replace(e, created_at=data.draw(instants)) for e in events]
    for customer in CUSTOMERS:
        state = fold(customer, moved).state
        assert encode_answer(state) == through_view(state)


def test_numbers_beyond_int64_and_exact_decimals_encode_alike() -> None:
    state = CustomerState(
        "c1",
        points_sum=10**29 * 3,  # a sum may outgrow the bounds on one number
        balance=BalanceSet(0, "e1", -(10**25), None, "0.125", "Next"),
        offers={"r": Offer(-1, "e2", None, "", "-99999999999999999999.5", 0, None)},
        claims={"k": Claim(1, "e3", "r", None, None, "")},
        refunds={"k": Stamp(-1_000_001, "e4"), "gone": Stamp(5, "e5")},
        coupons={"A": CouponSet(0, "e6", None, None, None, None, None)},
        created=Created(0, "e7", "", None, None, None, None, None, None, None),
        tier=TierSet(0, "e8", None, None),
        birthday=BirthdaySet(0, "e9", 0),
        pass_uninstalled=Stamp(0, "e10"),
    )
    assert encode_answer(state) == through_view(state)
    state.balance = BalanceSet(0, "e1", 5, "-12345678901234567890123.75", None, None)
    assert encode_answer(state) == through_view(state)
    assert encode_answer(CustomerState("empty")) == through_view(CustomerState("empty"))
