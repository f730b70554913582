"""The stored event message and the event types, as other teams' generated
clients see them (see test_proto_contract.py for why these names are binding)."""

from __future__ import annotations

from testkit.protoshapes import (
    BOOL,
    INT64,
    STRING,
    STRUCT,
    TIMESTAMP,
    assert_shape,
    enum_of,
    event_pb2,
    message_of,
    qualified,
)

# The 18 event names as JeriCommerce documents them (docs/webhooks.md).
DOCUMENTED_EVENT_NAMES = [
    "Customer created",
    "Customer birthday",
    "Customer scanned",
    "Customer tapped",
    "Wallet pass requested",
    "Wallet pass installed",
    "Wallet pass uninstalled",
    "Balance changed",
    "Tier changed",
    "Coupon assigned",
    "Coupon pass installed",
    "Coupon pass uninstalled",
    "Gift card sent",
    "Reward redeemable",
    "Reward redeemed",
    "Reward refunded",
    "Wallet click",
    "Wallet visit",
]


# --- events ------------------------------------------------------------------


STORED_EVENT_FIELDS: dict[str, object] = {
    "position": INT64,
    "id": STRING,
    "type": qualified("EventType"),
    "type_name": STRING,
    "customer_id": STRING,
    "email": STRING,
    "campaign_id": STRING,
    "url": STRING,
    "browser": STRING,
    "created_at": TIMESTAMP,
    "received_at": TIMESTAMP,
    "properties": STRUCT,
    "raw_json": STRING,
    "redacted": BOOL,
}


def test_stored_event_fields() -> None:
    assert_shape(message_of(event_pb2, "StoredEvent"), STORED_EVENT_FIELDS)


def _event_type_values() -> dict[str, int]:
    return {v.name: v.number for v in enum_of(event_pb2, "EventType").values}


def test_event_type_values_are_prefixed_and_zero_is_unspecified() -> None:
    values = _event_type_values()
    assert all(name.startswith("EVENT_TYPE_") for name in values), values
    zero = [name for name, number in values.items() if number == 0]
    assert zero == ["EVENT_TYPE_UNSPECIFIED"]
    assert values["EVENT_TYPE_UNKNOWN"] == 19
    assert len(set(values.values())) == len(values), "aliased EventType values"


def test_every_contract_event_name_has_its_own_event_type() -> None:
    values = _event_type_values()
    numbers = []
    for event_name in DOCUMENTED_EVENT_NAMES:
        enum_name = "EVENT_TYPE_" + event_name.upper().replace(" ", "_")
        assert enum_name in values, f"{event_name!r}: no {enum_name}"
        numbers.append(values[enum_name])
    assert len(set(numbers)) == 18
    assert 0 not in numbers and values["EVENT_TYPE_UNKNOWN"] not in numbers
    # Nothing else: UNSPECIFIED, the 18 events and UNKNOWN.
    assert len(values) == 20
