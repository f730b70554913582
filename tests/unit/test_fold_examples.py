"""The read-model rules of docs/read-models.md, one example at a time: fold
and apply, and the codec. The parts of the model have their own modules
(test_fold_profile_points, test_fold_passes_coupons, test_fold_rewards)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from projections.customer import (
    LedgerEntry,
    apply,
    decode_state,
    encode_state,
    fold,
    new_state,
    view,
)
from projections.events import EventType as T
from testkit.examples import T0, customer
from testkit.recorded import make_event

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
