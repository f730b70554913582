"""Typed event payloads: the proto shape, exact numbers, the upcaster, and
the events that carry none (projections/payloads.py, upcasting.py,
service/rpc/convert/payloads.py)."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import pytest
from jericommerce.loyalty.v1 import event_payloads_pb2, event_pb2

from projections import payloads, upcasting
from projections.customer import fold, view
from projections.events import REDACTED_EVENT, EventType
from projections.events import EventType as T
from service.rpc import convert
from testkit.recorded import make_event


def typed(event_message: event_pb2.StoredEvent) -> object:
    """The set payload message, after a trip over the wire."""
    wire = event_pb2.StoredEvent.FromString(event_message.SerializeToString())
    field = wire.WhichOneof("payload")
    assert field is not None, wire.payload_error
    return getattr(wire, field)


# --- the shape -------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(EventType))
def test_each_type_has_its_oneof_field_and_the_same_fields_as_its_payload(
    kind: EventType,
) -> None:
    cls, _ = payloads.SPECS[kind]
    oneof = event_pb2.StoredEvent.DESCRIPTOR.oneofs_by_name["payload"]
    field = {f.name: f for f in oneof.fields}[kind.name.lower()]
    assert field.message_type.name == cls.__name__
    proto_fields = {f.name for f in field.message_type.fields}
    assert proto_fields == {f.name for f in dataclasses.fields(cls)} | {"extra"}


def test_the_oneof_has_one_field_per_type_and_numbers_from_20() -> None:
    oneof = event_pb2.StoredEvent.DESCRIPTOR.oneofs_by_name["payload"]
    assert len(oneof.fields) == len(EventType)
    assert min(f.number for f in oneof.fields) >= 20
    assert 15 not in {f.number for f in oneof.fields}
    # 15 is the stored trace context, beside the payload, not in it.
    assert event_pb2.StoredEvent.DESCRIPTOR.fields_by_number[15].name == "traceparent"


def test_no_payload_field_is_a_double_and_numbers_are_decimal_or_int64() -> None:
    for message in event_payloads_pb2.DESCRIPTOR.message_types_by_name.values():
        for field in message.fields:
            assert field.type not in (field.TYPE_DOUBLE, field.TYPE_FLOAT), field
            assert "decimal" not in field.name, field  # one field per number


def test_upcaster_and_reader_agree_on_which_properties_are_read() -> None:
    for kind, (_, spec) in payloads.SPECS.items():
        assert {n for n, *_ in spec if n} == set(upcasting.CURRENT[kind]), kind


# --- exact numbers ---------------------------------------------------------------


@pytest.mark.parametrize(
    "sent", ["12345678901234567890", "0.000000000000000001", "-7.25", "1e2", "0.0"]
)
def test_balance_changed_numbers_are_read_back_exactly(sent: str) -> None:
    raw_number = Decimal(sent) if "." in sent or "e" in sent else int(sent)
    event = make_event(
        T.BALANCE_CHANGED, id="e1", amount=raw_number, previousBalance=raw_number
    )
    message = typed(convert.event_to_proto(event))
    assert isinstance(message, event_payloads_pb2.BalanceChanged)
    assert Decimal(message.amount.value) == Decimal(sent)
    expected = {"1e2": "100", "0.0": "0"}.get(sent, sent)
    assert message.amount.value == expected
    assert message.previous_balance.value == expected
    ledger = fold("c1", [event]).ledger
    assert Decimal(message.amount.value) == ledger[0].amount


def test_a_number_sent_as_a_string_is_the_same_decimal() -> None:
    event = make_event(T.REWARD_REDEEMABLE, id="e1", rewardId="r", rewardValue="2.50")
    message = typed(convert.event_to_proto(event))
    assert isinstance(message, event_payloads_pb2.RewardRedeemable)
    assert message.reward_value.value == "2.5"
    assert not message.HasField("reward_cost")  # not sent: unset, not "0"


# --- the upcaster: old and new shapes give equal messages -------------------------


def test_previous_balance_as_a_number_and_as_a_string_gives_equal_messages() -> None:
    as_number = make_event(T.BALANCE_CHANGED, id="e1", amount=5, previousBalance=150)
    as_string = make_event(T.BALANCE_CHANGED, id="e1", amount=5, previousBalance="150")
    as_decimal = make_event(
        T.BALANCE_CHANGED, id="e1", amount=5, previousBalance=Decimal("150.00")
    )
    messages = [
        typed(convert.event_to_proto(e)) for e in (as_number, as_string, as_decimal)
    ]
    assert messages[0] == messages[1] == messages[2]
    assert as_number.raw != as_string.raw  # the stored bodies stay as sent


def test_a_renamed_property_gives_the_message_of_the_current_name() -> None:
    old = make_event(
        T.BALANCE_CHANGED,
        id="e1",
        amount=5,
        previous_balance="150",
        next_reward_name="Mug",
    )
    new = make_event(
        T.BALANCE_CHANGED, id="e1", amount=5, previousBalance=150, nextRewardName="Mug"
    )
    assert typed(convert.event_to_proto(old)) == typed(convert.event_to_proto(new))
    # ... and the folds read the old event in the current contract too.
    assert view(fold("c1", [old]).state).points_balance == 155


def test_when_both_spellings_are_sent_the_current_wins_and_the_old_is_kept() -> None:
    event = make_event(
        T.BALANCE_CHANGED, id="e1", amount=5, previousBalance=10, previous_balance=99
    )
    message = typed(convert.event_to_proto(event))
    assert isinstance(message, event_payloads_pb2.BalanceChanged)
    assert message.previous_balance.value == "10"
    assert dict(message.extra) == {"previous_balance": "99"}


# --- what the sender sent is kept ---------------------------------------------


def test_unread_properties_are_in_extra_as_exact_json() -> None:
    event = make_event(
        T.CUSTOMER_SCANNED,
        id="e1",
        location={"lat": Decimal("40.4167754"), "tags": ["a", None, True]},
        big=12345678901234567890,
    )
    message = typed(convert.event_to_proto(event))
    assert isinstance(message, event_payloads_pb2.CustomerScanned)
    assert json.loads(message.extra["location"], parse_float=Decimal) == {
        "lat": Decimal("40.4167754"),
        "tags": ["a", None, True],
    }
    assert message.extra["big"] == "12345678901234567890"


def test_a_scan_without_properties_still_sets_its_payload() -> None:
    message = typed(convert.event_to_proto(make_event(T.CUSTOMER_SCANNED, id="e1")))
    assert isinstance(message, event_payloads_pb2.CustomerScanned)


def test_a_carried_only_property_of_another_kind_never_poisons() -> None:
    event = make_event(T.WALLET_CLICK, id="e1", url={"href": "x"}, utmSource=7)
    message = typed(convert.event_to_proto(event))
    assert isinstance(message, event_payloads_pb2.WalletClick)
    assert not message.HasField("url")
    assert message.extra["url"] == '{"href":"x"}'
    assert message.utm_source == "7"  # a number taken as its text
    assert fold("c1", [event]).dead == []


def test_web_events_fall_back_to_the_base_url_and_browser() -> None:
    base = {"url": "https://shop/x", "browser": "Firefox 120"}
    from_base = make_event(T.WALLET_VISIT, id="e1", base=base, name="Home")
    message = typed(convert.event_to_proto(from_base))
    assert isinstance(message, event_payloads_pb2.WalletVisit)
    assert (message.url, message.browser, message.name) == (
        "https://shop/x",
        "Firefox 120",
        "Home",
    )
    own = make_event(T.WALLET_VISIT, id="e1", base=base, url="https://shop/y")
    assert typed(convert.event_to_proto(own)).url == "https://shop/y"  # type: ignore[attr-defined]


def test_the_customer_email_is_the_base_payloads() -> None:
    event = make_event(
        T.CUSTOMER_CREATED, id="e1", email="ana@example.com", props={"email": "x@y"}
    )
    message = typed(convert.event_to_proto(event))
    assert isinstance(message, event_payloads_pb2.CustomerCreated)
    assert message.email == "ana@example.com"
    assert message.extra["email"] == '"x@y"'


# --- events without a payload -----------------------------------------------------


def test_an_unknown_type_has_no_payload_but_keeps_its_name_and_body() -> None:
    event = make_event("Points expired", id="e1", amount=5)
    message = convert.event_to_proto(event)
    assert message.WhichOneof("payload") is None
    assert message.payload_error == ""
    assert message.type_name == "Points expired"
    assert json.loads(message.raw_json)["properties"] == {"amount": 5}


def test_a_redacted_event_has_no_payload() -> None:
    event = dataclasses.replace(
        make_event(T.BALANCE_CHANGED, id="e1", amount=5),
        body={},
        raw=b"",
        kind=REDACTED_EVENT,
    )
    message = convert.event_to_proto(event)
    assert message.redacted
    assert message.WhichOneof("payload") is None
    assert message.payload_error == ""


def test_an_unusable_event_has_no_payload_and_says_why_as_the_fold_does() -> None:
    event = make_event(T.BALANCE_CHANGED, id="e1", amount="lots")
    message = convert.event_to_proto(event)
    assert message.WhichOneof("payload") is None
    assert message.payload_error == "amount is not a number"
    assert fold("c1", [event]).dead == [("e1", message.payload_error)]
