"""One webhook as JeriCommerce sends it: the envelope around the properties,
the event-type header in one of its accepted spellings, and its signature."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from projections.events import EventType
from testkit.signing import sign
from testkit.traffic.catalogue import UNKNOWN_TYPES
from testkit.traffic.customers import Customer
from testkit.traffic.properties import CAMPAIGN_TYPES, WEB_TYPES, properties

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True, slots=True)
class Webhook:
    """One event as the sender delivers it (possibly several times)."""

    id: str
    type_name: str  # the event-type header, as sent
    type: EventType | None  # None: a type this service does not know
    customer_id: str
    body: bytes
    poison: bool = False  # signed and valid, but the folds cannot use it

    def signature(self, secret: str | bytes, style: str = "hex") -> str:
        return sign(self.body, secret, style)


def iso(when: datetime) -> str:
    """createdAt as the sender writes it: UTC, milliseconds, `Z`."""
    text = when.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def spelling(rng: random.Random, name: str) -> str:
    """The event-type header in one of the spellings the ingress accepts."""
    words = name.split()
    return rng.choice(
        (
            name,
            name,
            "_".join(words).upper(),
            "_".join(words).lower(),
            ".".join(words).lower(),
            words[0].lower() + "".join(w.capitalize() for w in words[1:]),
        )
    )


def encode(body: dict[str, Any]) -> bytes:
    return _dumps(body).encode()


def envelope(
    c: Customer,
    kind: EventType,
    props: dict[str, Any],
    *,
    event_id: str,
    created_at: datetime,
    campaign: bool,
) -> dict[str, Any]:
    """The payload around `props`: the web events repeat the page's url and
    browser outside the properties, as the sender does."""
    body: dict[str, Any] = {"email": c.email, "id": event_id, "customerId": c.id}
    if campaign:
        body["campaignId"] = c.campaign_id
    if kind in WEB_TYPES:
        body["url"], body["browser"] = props["url"], props["browser"]
    body["createdAt"] = iso(created_at)
    body["properties"] = props
    return body


def make(
    rng: random.Random,
    c: Customer,
    kind: EventType,
    n: int,
    *,
    event_id: str,
    created_at: datetime,
    type_name: str | None = None,
    **given: Any,
) -> Webhook:
    """One event of `kind` for `c` (see properties.properties for `given`)."""
    props = properties(kind, c, rng, n, **given)
    campaign = kind in CAMPAIGN_TYPES or rng.random() < 0.15
    body = envelope(
        c, kind, props, event_id=event_id, created_at=created_at, campaign=campaign
    )
    return Webhook(event_id, type_name or kind.value, kind, c.id, encode(body))


def unknown(
    rng: random.Random,
    c: Customer,
    *,
    event_id: str,
    created_at: datetime,
    name: str | None = None,
) -> Webhook:
    """An event of a type a newer JeriCommerce might send."""
    name = name or rng.choice(UNKNOWN_TYPES)
    props = {"amount": -rng.randrange(1, 50), "mergedInto": c.id}
    body = {
        "email": c.email,
        "id": event_id,
        "customerId": c.id,
        "createdAt": iso(created_at),
        "properties": props,
    }
    return Webhook(event_id, name, None, c.id, encode(body))


def poison(
    c: Customer, *, event_id: str, created_at: datetime, reference: str = "manual"
) -> Webhook:
    """A signed, valid Balance changed whose amount no fold can use: it must
    be stored, then dead-lettered."""
    props = {"amount": "lots", "reference": reference}
    body = {
        "email": c.email,
        "id": event_id,
        "customerId": c.id,
        "createdAt": iso(created_at),
        "properties": props,
    }
    kind = EventType.BALANCE_CHANGED
    return Webhook(event_id, kind.value, kind, c.id, encode(body), poison=True)
