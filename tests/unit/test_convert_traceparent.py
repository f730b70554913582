"""A stored event's trace context reaches StreamEvents' StoredEvent, redacted
events included (it is ids only), and stays empty when none was kept."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from jericommerce.loyalty.v1 import event_pb2

from projections.events import REDACTED_EVENT, EventType, RecordedEvent
from service.rpc import convert

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
T0 = datetime(2026, 3, 8, 12, tzinfo=UTC)
RAW = b'{"id":"e1","customerId":"c1","createdAt":"2026-03-08T12:00:00Z"}'


def event(traceparent: str) -> RecordedEvent:
    return RecordedEvent(
        position=1,
        id="e1",
        type=EventType.TIER_CHANGED,
        type_name="Tier changed",
        customer_id="c1",
        created_at=T0,
        received_at=T0,
        body={"id": "e1", "customerId": "c1"},
        raw=RAW,
        traceparent=traceparent,
    )


def wire(e: RecordedEvent) -> event_pb2.StoredEvent:
    return event_pb2.StoredEvent.FromString(
        convert.event_to_proto(e).SerializeToString()
    )


def test_the_trace_context_is_carried() -> None:
    assert wire(event(TP)).traceparent == TP


def test_none_kept_is_empty() -> None:
    assert wire(event("")).traceparent == ""


def test_a_redacted_event_keeps_it() -> None:
    redacted = replace(event(TP), body={}, raw=b"", kind=REDACTED_EVENT)
    m = wire(redacted)
    assert m.redacted and m.raw_json == "" and m.traceparent == TP
