"""The conversion of stored events and event types to their gRPC messages."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from google.protobuf import json_format
from jericommerce.loyalty.v1 import event_pb2

from projections.events import EventType as T
from projections.events import RecordedEvent
from service.rpc import convert
from testkit.examples import T0
from testkit.protoshapes import roundtrip, ts
from testkit.recorded import make_event

# --- event types ---------------------------------------------------------------


def test_every_event_type_has_its_proto_value_and_back() -> None:
    proto_names = set(event_pb2.EventType.keys()) - {"EVENT_TYPE_UNSPECIFIED"}
    mapped = {event_pb2.EventType.Name(v) for v in convert.EVENT_TYPE_TO_PROTO.values()}
    assert mapped == proto_names
    for t in T:
        value = convert.EVENT_TYPE_TO_PROTO[t]
        assert event_pb2.EventType.Name(value) == f"EVENT_TYPE_{t.name}"
        assert convert.event_type_from_proto(value) is t
    assert convert.EVENT_TYPE_TO_PROTO[None] == event_pb2.EVENT_TYPE_UNKNOWN
    assert convert.event_type_from_proto(event_pb2.EVENT_TYPE_UNKNOWN) is None


@pytest.mark.parametrize("value", [event_pb2.EVENT_TYPE_UNSPECIFIED, 999, -1])
def test_event_type_from_proto_rejects_unspecified_and_unknown_numbers(
    value: int,
) -> None:
    with pytest.raises(ValueError):
        convert.event_type_from_proto(value)


# --- stored events -------------------------------------------------------------


def recorded(props: str, id: str = "e1", email: str = "a@x.com") -> RecordedEvent:
    """A `Customer created` stored from a hand-written body (JSON text pieces),
    parsed as the ingress parses it."""
    raw = (
        f'{{"id":"{id}","customerId":"c1","createdAt":"2026-03-08T12:00:00Z",'
        f'"email":"{email}","properties":{props}}}'
    ).encode()
    body = json.loads(raw, parse_float=Decimal)
    return RecordedEvent(
        position=1,
        id=body["id"],
        type=T.CUSTOMER_CREATED,
        type_name="Customer created",
        customer_id="c1",
        created_at=T0,
        received_at=T0,
        body=body,
        raw=raw,
    )


@pytest.mark.parametrize("event_type", list(T))
def test_event_of_every_type_converts(event_type: T) -> None:
    name = event_type.value.lower().replace(" ", "_")  # as a sender may spell it
    event = make_event(name, id="evt-1", position=3)
    m = roundtrip(convert.event_to_proto(event))
    assert m.type == event_pb2.EventType.Value(f"EVENT_TYPE_{event_type.name}")
    assert m.type_name == name


def test_unknown_event_type() -> None:
    m = convert.event_to_proto(make_event("Loyalty points expired", id="e1"))
    assert m.type == event_pb2.EVENT_TYPE_UNKNOWN
    assert m.type_name == "Loyalty points expired"


def test_event_fields() -> None:
    event = make_event(
        T.BALANCE_CHANGED,
        id="evt-9",
        customer_id="cust-7",
        position=12,
        email="ana@example.com",
        created_at=datetime(
            2026, 3, 8, 13, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1))
        ),
        received_at=datetime(2026, 3, 8, 12, 0, 5, 1, tzinfo=UTC),
        base={"campaignId": "camp-1", "url": "https://shop/x", "browser": "Safari"},
        amount=5,
    )
    m = roundtrip(convert.event_to_proto(event))
    assert (m.position, m.id, m.customer_id) == (12, "evt-9", "cust-7")
    assert m.type == event_pb2.EVENT_TYPE_BALANCE_CHANGED
    assert m.type_name == "Balance changed"
    assert (m.email, m.campaign_id, m.url, m.browser) == (
        "ana@example.com",
        "camp-1",
        "https://shop/x",
        "Safari",
    )
    assert (m.created_at.seconds, m.created_at.nanos) == (
        int(datetime(2026, 3, 8, 12, tzinfo=UTC).timestamp()),
        123456000,
    )
    assert m.received_at == ts(event.received_at)
    assert json_format.MessageToDict(m.properties) == {"amount": 5}


def test_base_fields_only_when_strings() -> None:
    event = make_event(
        T.CUSTOMER_TAPPED,
        id="e1",
        base={"email": 123, "campaignId": None, "url": ["x"], "browser": {"a": 1}},
    )
    m = convert.event_to_proto(event)
    assert m.email == m.campaign_id == m.url == m.browser == ""


def test_properties_absent_versus_empty() -> None:
    empty = make_event(T.WALLET_CLICK, id="e1")
    assert convert.event_to_proto(empty).HasField("properties")
    body = {k: v for k, v in empty.body.items() if k != "properties"}
    none = dataclasses.replace(empty, body=body)
    assert not convert.event_to_proto(none).HasField("properties")


def test_weird_property_values_convert() -> None:
    props = {
        "nested": {"a": [1, {"b": None}, [], {}], "c": {"d": {"e": "deep"}}},
        "null": None,
        "yes": True,
        "no": False,
        "zero": 0,
        "huge": 10**30,
        "enormous": -(10**400),
        "fraction": Decimal("10.25"),
        "tiny": Decimal("1E-400"),
        "vast": Decimal("1E+999"),
        "mixed": [1, "two", None, True, Decimal("3.5")],
    }
    event = make_event(T.CUSTOMER_SCANNED, id="e1", props=props)
    m = roundtrip(convert.event_to_proto(event))
    got = json_format.MessageToDict(m.properties)  # a JSON client can read it
    assert got["nested"] == {"a": [1, {"b": None}, [], {}], "c": {"d": {"e": "deep"}}}
    assert (got["null"], got["yes"], got["no"], got["zero"]) == (None, True, False, 0)
    assert got["huge"] == 1e30
    assert got["enormous"] == -1.7976931348623157e308  # saturated, not -inf
    assert got["vast"] == 1.7976931348623157e308
    assert (got["fraction"], got["tiny"]) == (10.25, 0)
    assert got["mixed"] == [1, "two", None, True, 3.5]
    json.dumps(json_format.MessageToDict(m))  # no inf/nan anywhere


def test_deep_nesting_is_cut_so_clients_can_parse_it() -> None:
    # 800 JSON levels: as deep as the ingress's parser accepts.
    props = '{"deep":' + '{"a":[' * 400 + '"bottom"' + "]}" * 400 + "}"
    event = recorded(props)
    m = roundtrip(convert.event_to_proto(event))  # upb's parser limit is 100
    value = m.properties.fields["deep"]
    levels = 1  # `properties` itself
    while value.WhichOneof("kind") in ("struct_value", "list_value"):
        levels += 1
        if value.HasField("struct_value"):
            value = value.struct_value.fields["a"]
        else:
            value = value.list_value.values[0]
    assert levels == convert.events.MAX_NESTING
    assert value.WhichOneof("kind") == "null_value"
    assert m.raw_json == event.raw.decode()  # the full payload is still there


def test_raw_json_is_the_raw_body() -> None:
    event = make_event(T.CUSTOMER_CREATED, id="e1", firstName="Añá 😀", n=10**30)
    m = roundtrip(convert.event_to_proto(event))
    assert m.raw_json.encode() == event.raw
    bad = dataclasses.replace(event, raw=b'{"id": "e1\xff"}')
    assert convert.event_to_proto(bad).raw_json == '{"id": "e1\ufffd"}'
