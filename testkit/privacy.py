"""The customers of the privacy tests, their personal data (distinctive, so
that finding it in clear means a leak), and their events as the ingress
parses them; and a row as the store wrote it before encryption."""

from __future__ import annotations

import json
from datetime import datetime

from eventsourcing.persistence import StoredEvent

from service.ingest import Envelope, parse_envelope
from service.storedevents import originator_id, topic_for

# Personal data that must never be found in clear once erased.
ANA = {
    "email": "ana.personal@example.com",
    "firstName": "Anapersonal",
    "lastName": "Zubizarretaxyz",
    "phoneNumber": "+34600999111",
}


def body(
    event_id: str, customer: str, created: str = "2026-03-08T12:00:00Z", **props: object
) -> bytes:
    payload: dict[str, object] = {"id": event_id, "customerId": customer}
    if "email" in props:
        payload["email"] = props["email"]
    payload.update(createdAt=created, properties=props)
    return json.dumps(payload).encode()


BOB = {"email": "bob@example.com", "firstName": "Bob", "lastName": "Roberts"}


def created(event_id: str, customer: str) -> Envelope:
    person = ANA if customer == "ana" else BOB
    return parse_envelope(body(event_id, customer, **person), "Customer created")


def points(event_id: str, customer: str, amount: int, when: str = "") -> Envelope:
    return parse_envelope(
        body(event_id, customer, when or "2026-03-08T12:05:00Z", amount=amount),
        "Balance changed",
    )


def legacy_state(env: Envelope, received: datetime) -> StoredEvent:
    """A row as the version before encryption wrote it (a v0 header)."""
    header = json.dumps(
        [
            env.id,
            env.customer_id,
            env.type_name,
            env.created_at.isoformat(),
            received.isoformat(),
        ],
        separators=(",", ":"),
    ).encode()
    return StoredEvent(
        originator_id=originator_id(env.id),
        originator_version=1,
        topic=topic_for(env.type),
        state=header + b"\n" + env.raw,
    )
