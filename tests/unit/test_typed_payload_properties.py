"""For any body, the typed payload a consumer replays and the service's own
fold agree on every number and name (hypothesis).

Bodies mix good values, values of the wrong kind, numbers sent as strings,
huge and tiny decimals, old (snake_case) property names and properties no
one reads. The fold is checked through the read model it builds; the payload
through the proto message as a client parses it off the wire.
"""

from __future__ import annotations

import decimal
import json
from decimal import Decimal
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from jericommerce.loyalty.v1 import event_pb2

from projections.customer import fold, view
from projections.customer.model import FoldResult
from projections.events import EventType as T
from projections.upcasting import CURRENT, snake_case
from service.rpc import convert
from testkit.recorded import make_event

spoilt = st.one_of(st.booleans(), st.just({"a": 1}), st.just(["x"]))
texts = st.one_of(
    st.none(),
    st.text(max_size=5),
    st.sampled_from(["", " ", "Añá 😀", "A1"]),
    st.integers(-5, 10**20),
    st.just(Decimal("2.50")),
)
extremes = st.sampled_from(
    [
        Decimal("1E-30"),
        Decimal("-999999999999999999999999999999.5"),
        2**63,
        -(2**63) - 1,
    ]
)
numbers = st.one_of(
    st.integers(-(10**20), 10**20),
    st.decimals(-1000, 1000, places=3, allow_nan=False, allow_infinity=False),
    extremes,
    st.sampled_from(
        [
            Decimal("0.000000000000000001"),
            12345678901234567890,
            "12345678901234567890",
            "0.000000000000000001",
            "-0.10",
            "1e2",
            "150",
            "lots",
            10**31,
        ]
    ),
)
flags = st.one_of(st.none(), st.booleans(), st.sampled_from([0, 1, "TRUE", "no"]))
ages = st.one_of(st.none(), st.integers(-5, 200), st.just("41"), st.just(2**40))

NUMERIC = {
    "amount",
    "previousBalance",
    "pointsToNextReward",
    "rewardValue",
    "rewardCost",
    "customerRemainingBalance",
}


def value_for(name: str) -> st.SearchStrategy[Any]:
    if name in NUMERIC:
        good = st.one_of(st.none(), numbers) if name != "amount" else numbers
    elif name == "age":
        good = ages
    elif name == "mailSent":
        good = flags
    else:
        good = texts
    return st.one_of(good, good, good, spoilt)


@st.composite
def bodies(draw: st.DrawFn, kind: T) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for name in CURRENT[kind]:
        if draw(st.integers(0, 3)) == 0:
            continue  # not sent
        spelling = name if draw(st.integers(0, 4)) else snake_case(name)
        props[spelling] = draw(value_for(name))
    extra = draw(st.dictionaries(st.sampled_from(["x", "deviceId", "n"]), numbers))
    return {**extra, **props}


events = st.sampled_from(list(T)).flatmap(
    lambda kind: st.tuples(
        st.just(kind),
        bodies(kind),
        st.sampled_from([None, "ana@x.com", ""]),
        st.sampled_from([{}, {"url": "https://u", "browser": "B"}]),
    )
)


def get(message: Any, name: str) -> Any:
    """A payload field as the fold would hold it: None when unset, a Decimal
    message as the exact number it spells."""
    if message.DESCRIPTOR.fields_by_name[name].has_presence and not message.HasField(
        name
    ):
        return None
    value = getattr(message, name)
    if hasattr(value, "value"):  # a Decimal message
        assert json.loads(value.value, parse_float=Decimal) == Decimal(value.value)
        number = Decimal(value.value)
        return int(number) if number == number.to_integral_value() else number
    return value


def agree(kind: T, result: FoldResult, payload: Any, event_id: str) -> None:
    state = result.state
    model = view(state)
    g = lambda name: get(payload, name)  # noqa: E731
    if kind is T.CUSTOMER_CREATED:
        assert (model.first_name, model.last_name, model.phone_number) == (
            g("first_name"),
            g("last_name"),
            g("phone_number"),
        )
        assert (model.origin, model.referral) == (g("origin"), g("referral"))
        assert model.utm.source == g("utm_source")
        assert model.utm.medium == g("utm_medium")
        assert model.utm.campaign == g("utm_campaign")
    elif kind is T.CUSTOMER_BIRTHDAY:
        assert model.birthday.age == g("age")
    elif kind is T.WALLET_PASS_REQUESTED:
        assert model.wallet_pass.download_link == g("download_link")
    elif kind is T.BALANCE_CHANGED:
        (entry,) = result.ledger
        assert entry.amount == g("amount") and type(entry.amount) is type(g("amount"))
        assert entry.previous_balance == g("previous_balance")
        assert entry.points_to_next_reward == g("points_to_next_reward")
        assert (entry.reference, entry.next_reward_name) == (
            g("reference"),
            g("next_reward_name"),
        )
        previous = g("previous_balance")
        with decimal.localcontext(prec=100):  # exactly, as the fold adds
            expected = g("amount") + (previous if previous is not None else 0)
        assert model.points_balance == expected
    elif kind is T.TIER_CHANGED:
        assert (model.tier.current, model.tier.previous) == (
            g("current"),
            g("previous"),
        )
    elif kind is T.COUPON_ASSIGNED:
        (coupon,) = model.coupons
        assert (coupon.code, coupon.header, coupon.body, coupon.slug) == (
            g("code"),
            g("header"),
            g("body"),
            g("slug"),
        )
        assert (coupon.assigned_from, coupon.install_url) == (
            g("assigned_from"),
            g("install_url"),
        )
    elif kind in (T.COUPON_PASS_INSTALLED, T.COUPON_PASS_UNINSTALLED):
        code = g("code")
        named = {code} if code is not None and code.strip() else set()
        assert set(state.coupon_passes) == named
    elif kind is T.GIFT_CARD_SENT:
        (card,) = model.gift_cards
        assert (card.code, card.header, card.body, card.slug) == (
            g("code"),
            g("header"),
            g("body"),
            g("slug"),
        )
        assert (card.assigned_from, card.install_url) == (
            g("assigned_from"),
            g("install_url"),
        )
        assert card.mail_sent == bool(g("mail_sent"))
    elif kind is T.REWARD_REDEEMABLE:
        (offer,) = model.redeemable_rewards
        assert (offer.reward_id, offer.reward_link, offer.reward_title) == (
            g("reward_id"),
            g("reward_link"),
            g("reward_title"),
        )
        assert offer.reward_value == g("reward_value")
        assert offer.reward_cost == g("reward_cost")
        assert offer.customer_remaining_balance == g("customer_remaining_balance")
    elif kind is T.REWARD_REDEEMED:
        (claim,) = model.redeemed_rewards
        claim_id = g("claim_id")
        expected_claim = claim_id if claim_id and claim_id.strip() else event_id
        assert claim.claim_id == expected_claim
        assert (claim.reward_id, claim.reward_link, claim.reward_title, claim.code) == (
            g("reward_id"),
            g("reward_link"),
            g("reward_title"),
            g("code"),
        )
    elif kind is T.REWARD_REFUNDED:
        assert set(state.refunds) == {g("claim_id")}
    elif kind in (T.WALLET_PASS_INSTALLED, T.WALLET_PASS_UNINSTALLED):
        # Nothing of theirs is read: the status alone (the rest is carried).
        assert model.wallet_pass.status.value == kind.name.removeprefix("WALLET_PASS_")
    else:  # counted only: scans, taps, clicks, visits
        counts = model.engagement
        assert (
            counts.scans,
            counts.taps,
            counts.wallet_clicks,
            counts.wallet_visits,
        ) == tuple(
            int(kind is k)
            for k in (
                T.CUSTOMER_SCANNED,
                T.CUSTOMER_TAPPED,
                T.WALLET_CLICK,
                T.WALLET_VISIT,
            )
        )


@settings(max_examples=400, deadline=None)
@given(events)
@example((T.BALANCE_CHANGED, {"amount": 12345678901234567890}, None, {}))
@example((T.BALANCE_CHANGED, {"amount": Decimal("0.000000000000000001")}, None, {}))
@example((T.REWARD_REDEEMABLE, {"rewardId": "r", "rewardValue": "2.50"}, None, {}))
def test_payload_and_fold_agree_on_every_number_and_name(spec: Any) -> None:
    kind, props, email, base = spec
    event = make_event(kind, id="e1", email=email, base=base, props=props)
    result = fold("c1", [event])
    message = event_pb2.StoredEvent.FromString(
        convert.event_to_proto(event).SerializeToString()
    )
    field = message.WhichOneof("payload")
    if result.dead:
        # Unusable for the fold: no payload, and the same reason.
        assert field is None
        assert result.dead == [("e1", message.payload_error)]
        return
    assert field == kind.name.lower() and message.payload_error == ""
    payload = getattr(message, field)
    agree(kind, result, payload, event.id)
    # Nothing the sender sent is lost: every property is read or in `extra`
    # (under its current name when an old spelling was sent).
    renamed = {snake_case(n): n for n in CURRENT[kind]}
    for name, value in props.items():
        current = renamed.get(name, name) if renamed.get(name) not in props else name
        if current in payload.extra:
            assert json.loads(payload.extra[current], parse_float=Decimal) == value
        else:  # read, and set when sent non-null
            assert current in CURRENT[kind], name
            if value is not None:
                assert get(payload, snake_case(current)) is not None, name
