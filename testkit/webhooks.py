"""One webhook's body, and where it is posted."""

from __future__ import annotations

import json
from typing import Any

from service.ingest import Envelope, parse_envelope
from service.webhook import WEBHOOK_PATH

__all__ = ["WEBHOOK_PATH", "envelope", "webhook_body"]


def webhook_body(
    event_id: str,
    customer_id: str = "c1",
    created_at: str = "2026-03-08T12:00:00Z",
    email: str | None = None,
    **properties: Any,
) -> bytes:
    body: dict[str, Any] = {
        "id": event_id,
        "customerId": customer_id,
        "createdAt": created_at,
        "properties": properties,
    }
    if email is not None:
        body["email"] = email
    return json.dumps(body).encode()


def envelope(
    event_id: str, customer: str = "c1", kind: str = "Balance changed"
) -> Envelope:
    """A parsed webhook as the ingress hands it to the event store; its
    properties include a nested value, kept verbatim."""
    body = {
        "id": event_id,
        "customerId": customer,
        "createdAt": "2026-03-08T12:00:00Z",
        "properties": {"amount": 5, "odd": [1, {"x": None}]},
    }
    raw = json.dumps(body).encode()
    return parse_envelope(raw, kind)
