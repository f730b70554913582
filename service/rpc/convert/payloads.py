"""Typed event payloads (projections.payloads) -> their proto messages.

Field by field, by name: each payload dataclass field has the proto field of
the same name (a unit test holds both sides to it), numbers become the exact
`Decimal` text, and the properties the payload does not carry go to `extra`
as JSON text with exact numbers.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from google.protobuf.message import Message
from jericommerce.loyalty.v1 import event_payloads_pb2

from projections.events import EventType, RecordedEvent
from projections.fields import PoisonEvent
from projections.payloads import SPECS, Payload, read_payload, unread_properties

from .scalars import decimal_text

_DECIMAL = event_payloads_pb2.Decimal.DESCRIPTOR


def _plan(kind: EventType) -> tuple[str, tuple[tuple[str, bool], ...]]:
    """The oneof field of `kind` and, per payload field, whether it is a
    Decimal. Fails at import if a payload field has no proto field."""
    cls, _ = SPECS[kind]
    oneof = kind.name.lower()
    descriptor = getattr(event_payloads_pb2, cls.__name__).DESCRIPTOR
    fields = []
    for name in cls.__slots__:
        field = descriptor.fields_by_name[name]
        fields.append((name, field.message_type is _DECIMAL))
    return oneof, tuple(fields)


PLANS: dict[EventType, tuple[str, tuple[tuple[str, bool], ...]]] = {
    kind: _plan(kind) for kind in EventType
}


def json_text(value: Any) -> str:
    """Compact JSON text of a parsed JSON value, numbers exactly as parsed
    (json.dumps cannot write a Decimal without going through a float).
    Iterative: the ingress accepts bodies nested deeper than Python recurses."""
    out: list[str] = []
    stack: list[tuple[bool, Any]] = [(False, value)]  # (is literal text, item)
    while stack:
        literal, item = stack.pop()
        if literal:
            out.append(item)
            continue
        kind = type(item)
        if kind is Decimal:
            out.append(str(item))
        elif kind is dict:
            out.append("{")
            stack.append((True, "}"))
            for i, (key, member) in enumerate(reversed(item.items())):
                stack.append((False, member))
                comma = "," if i < len(item) - 1 else ""
                stack.append((True, comma + _dumps(key) + ":"))
        elif kind is list:
            out.append("[")
            stack.append((True, "]"))
            for i, member in enumerate(reversed(item)):
                stack.append((False, member))
                if i < len(item) - 1:
                    stack.append((True, ","))
        else:
            out.append(_dumps(item))
    return "".join(out)


def _dumps(scalar: Any) -> str:
    return json.dumps(scalar, ensure_ascii=False)


def fill_payload(target: Message, kind: EventType, payload: Payload) -> Message:
    """Write `payload` into the StoredEvent `target`'s oneof field of `kind`;
    returns that field's message."""
    oneof, fields = PLANS[kind]
    message = getattr(target, oneof)
    message.SetInParent()  # set even when it has no field (a bare scan)
    for name, is_decimal in fields:
        value = getattr(payload, name)
        if value is None:
            continue
        if is_decimal:
            getattr(message, name).value = decimal_text(value)
        else:
            setattr(message, name, value)
    return message  # type: ignore[no-any-return]


def set_payload(target: Message, event: RecordedEvent) -> None:
    """The typed payload of a stored event of a known type that is not
    redacted, or `payload_error` when its properties are unusable."""
    kind = event.type
    assert kind is not None and not event.redacted
    try:
        payload = read_payload(event)
    except PoisonEvent as poison:
        target.payload_error = str(poison)  # type: ignore[attr-defined]
        return
    message = fill_payload(target, kind, payload)
    unread = unread_properties(event, payload)
    if unread:
        extra = message.extra  # type: ignore[attr-defined]
        for name, value in unread.items():
            extra[name] = json_text(value)
