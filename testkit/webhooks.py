"""One webhook's body, and where it is posted."""

from __future__ import annotations

import json
from typing import Any

from service.webhook import WEBHOOK_PATH

__all__ = ["WEBHOOK_PATH", "webhook_body"]


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
