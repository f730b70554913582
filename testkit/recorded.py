"""Build RecordedEvents as the ingress stores them, for tests.

The body is parsed back from the raw bytes the way the ingress parses a
webhook (fractions as Decimal), so `body` and `raw` always agree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from projections.events import EventType, RecordedEvent, parse_event_type

DEFAULT_CREATED_AT = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)


def make_event(
    type_or_name: EventType | str,
    *,
    id: str,
    customer_id: str = "c1",
    created_at: datetime | str = DEFAULT_CREATED_AT,
    position: int = 1,
    email: str | None = None,
    received_at: datetime | None = None,
    props: Mapping[str, Any] | None = None,
    base: Mapping[str, Any] | None = None,
    **properties: Any,
) -> RecordedEvent:
    """One stored event.

    `type_or_name`: an EventType, or a name as a sender spells it (unknown
    names give type None). Properties come from `props` (for names that clash
    with this signature, e.g. "email") and then the keyword arguments; `base`
    adds base-payload fields such as campaignId, url or browser.
    Decimal and float values are written to raw as plain JSON numbers.
    """
    if isinstance(type_or_name, EventType):
        event_type: EventType | None = type_or_name
        type_name = type_or_name.value
    else:
        event_type = parse_event_type(type_or_name)
        type_name = type_or_name
    when = _aware(created_at)
    payload: dict[str, Any] = {
        "id": id,
        "customerId": customer_id,
        "createdAt": when.isoformat().replace("+00:00", "Z"),
    }
    if email is not None:
        payload["email"] = email
    payload.update(base or {})
    payload["properties"] = {**(props or {}), **properties}
    raw = _to_json(payload).encode()
    return RecordedEvent(
        position=position,
        id=id,
        type=event_type,
        type_name=type_name,
        customer_id=customer_id,
        created_at=when,
        received_at=received_at or when,
        body=json.loads(raw, parse_float=Decimal),
        raw=raw,
    )


def _aware(value: datetime | str) -> datetime:
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _to_json(value: Any) -> str:
    """json.dumps, except that Decimals are written as numbers, exactly."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        items = (f"{json.dumps(k)}:{_to_json(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_to_json(v) for v in value) + "]"
    return json.dumps(value)
