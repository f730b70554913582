"""Stored events -> protobuf messages, and event types both ways."""

from __future__ import annotations

import math
import sys
from decimal import Decimal
from typing import Any

from google.protobuf.struct_pb2 import ListValue, Struct
from jericommerce.loyalty.v1 import event_pb2, event_service_pb2

from projections.events import EventType, RecordedEvent

from .payloads import set_payload
from .scalars import seconds_nanos

_MAX_DOUBLE = sys.float_info.max

# By member name, so a new EventType without its proto value fails at import
# (ValueError from .Value), not on the first stream that meets it.
EVENT_TYPE_TO_PROTO: dict[EventType | None, event_pb2.EventType.ValueType] = {
    t: event_pb2.EventType.Value(f"EVENT_TYPE_{t.name}") for t in EventType
}
EVENT_TYPE_TO_PROTO[None] = event_pb2.EVENT_TYPE_UNKNOWN
_EVENT_TYPE_FROM_PROTO: dict[int, EventType | None] = {
    v: t for t, v in EVENT_TYPE_TO_PROTO.items()
}


def event_type_from_proto(value: int) -> EventType | None:
    """The domain type of a proto EventType value; None for EVENT_TYPE_UNKNOWN.

    ValueError for EVENT_TYPE_UNSPECIFIED and for numbers this build does not
    know (a newer client's value), which callers report as INVALID_ARGUMENT.
    """
    try:
        return _EVENT_TYPE_FROM_PROTO[value]
    except KeyError:
        raise ValueError(f"not a valid event type: {value}") from None


# Containers nested deeper inside `properties` become null: protobuf parsers
# (upb, C++, Java) refuse messages nested over 100 levels, each JSON object
# level costs 3 in a Struct, and the ingress accepts far deeper bodies. Real
# payloads nest a few levels; raw_json keeps everything.
MAX_NESTING = 20


def _str(value: Any) -> str | None:
    # Base fields are whatever the sender put there; only strings are shown.
    return value if type(value) is str else None


def _double(number: int | Decimal | float) -> float:
    # Struct numbers are doubles (documented in event.proto; raw_json is
    # exact). Beyond the double range, saturate instead of producing an
    # infinity, which JSON encoders of Struct (protojson, json_format) reject.
    try:
        value = float(number)
    except OverflowError:  # an int of more than ~309 digits
        return _MAX_DOUBLE if number > 0 else -_MAX_DOUBLE
    if math.isinf(value):  # a Decimal such as 1e999
        return math.copysign(_MAX_DOUBLE, value)
    return value


def _fill_struct(struct: Struct, obj: dict[str, Any], level: int) -> None:
    if not obj:
        struct.SetInParent()  # present though empty: `{}`, not null
        return
    fields = struct.fields
    for key, value in obj.items():
        _fill_value(fields[key], value, level)


def _fill_list(values: ListValue, items: list[Any], level: int) -> None:
    if not items:
        values.SetInParent()  # present though empty: `[]`, not null
        return
    for item in items:
        _fill_value(values.values.add(), item, level)


def _fill_value(target: Any, value: Any, level: int) -> None:
    # Hand-rolled Struct.update (~1.5x faster in a profile, docs/performance.md
    # "Profiles"): exact `type() is`
    # tests, Decimal support, and one pass for any parsed JSON value.
    kind = type(value)
    if kind is str:
        target.string_value = value
    elif kind is int:
        try:
            target.number_value = value
        except OverflowError:  # beyond the double range
            target.number_value = _double(value)
    elif kind is bool:
        target.bool_value = value
    elif value is None:
        target.null_value = 0
    elif kind is dict or kind is list:
        if level >= MAX_NESTING:
            target.null_value = 0
        elif kind is dict:
            _fill_struct(target.struct_value, value, level + 1)
        else:
            _fill_list(target.list_value, value, level + 1)
    elif kind is Decimal or kind is float:
        target.number_value = _double(value)
    else:  # not produced by a JSON parser; shown rather than failing the call
        target.string_value = str(value)


def event_to_proto(e: RecordedEvent) -> event_pb2.StoredEvent:
    """One stored event, as StreamEvents and ListCustomerEvents send it."""
    body = e.body
    message = event_pb2.StoredEvent(
        position=e.position,
        id=e.id,
        type=EVENT_TYPE_TO_PROTO[e.type],
        type_name=e.type_name,
        customer_id=e.customer_id,
        email=_str(body.get("email")),
        campaign_id=_str(body.get("campaignId")),
        url=_str(body.get("url")),
        browser=_str(body.get("browser")),
        # "replace" only keeps a damaged stored row from failing a whole
        # replay stream; the ingress stores UTF-8 bodies only.
        raw_json=e.raw.decode("utf-8", "replace"),
    )
    # Set in place: cheaper than building Timestamps for the constructor to copy.
    created, received = message.created_at, message.received_at
    created.seconds, created.nanos = seconds_nanos(e.created_at)
    received.seconds, received.nanos = seconds_nanos(e.received_at)
    props = body.get("properties")
    if type(props) is dict:  # unset when the payload had no properties object
        _fill_struct(message.properties, props, 1)
    if e.redacted:
        message.redacted = True
    elif e.type is not None and not e.is_erasure:
        set_payload(message, e)
    if e.traceparent:
        message.traceparent = e.traceparent
    return message


def stream_item(e: RecordedEvent) -> event_service_pb2.StreamEventsResponse:
    """A StreamEvents item: the event, or the record of an erasure."""
    if e.is_erasure:
        erased = event_service_pb2.CustomerErased(
            position=e.position, customer_id=e.customer_id
        )
        erased.erased_at.seconds, erased.erased_at.nanos = seconds_nanos(e.created_at)
        return event_service_pb2.StreamEventsResponse(customer_erased=erased)
    return event_service_pb2.StreamEventsResponse(event=event_to_proto(e))
