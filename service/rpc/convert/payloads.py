"""Typed event payloads (projections.payloads) -> their proto messages.

Field by field, by name: each payload dataclass field has the proto field of
the same name (a unit test holds both sides to it), numbers become the exact
`Decimal` text, and the properties the payload does not carry go to `extra`
as JSON text with exact numbers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NamedTuple

from google.protobuf.message import Message
from jericommerce.loyalty.v1 import event_payloads_pb2

from projections.events import EventType, RecordedEvent
from projections.fields import PoisonEvent
from projections.payload_types import Payload
from projections.payloads import READINGS, SPECS, Reading

from .scalars import decimal_text

_DECIMAL = event_payloads_pb2.Decimal.DESCRIPTOR


class Plan(NamedTuple):
    """What converting one type's payload needs, found with one lookup."""

    reading: Reading
    # fill(target, payload): sets the type's field of StoredEvent.payload
    # from the payload, field by field; returns that field's message.
    fill: Callable[[Message, Payload], Message]


def _plan(kind: EventType) -> Plan:
    """Fails at import if a payload field has no proto field."""
    cls, _ = SPECS[kind]
    descriptor = getattr(event_payloads_pb2, cls.__name__).DESCRIPTOR
    lines = [
        "def fill(target, p):",
        f"    m = target.{kind.name.lower()}",
        "    m.SetInParent()",  # set even when it has no field (a bare scan)
    ]
    for name in cls.__slots__:
        field = descriptor.fields_by_name[name]
        lines.append(f"    if p.{name} is not None:")
        if field.message_type is _DECIMAL:
            lines.append(f"        m.{name}.value = decimal_text(p.{name})")
        else:
            lines.append(f"        m.{name} = p.{name}")
    lines.append("    return m")
    # Written out per type, like the reading (projections.payloads._compile):
    # named attributes instead of a loop of getattr/setattr on every event.
    env: dict[str, Any] = {"decimal_text": decimal_text}
    exec(compile("\n".join(lines) + "\n", f"<fill of {cls.__name__}>", "exec"), env)
    return Plan(READINGS[kind], env["fill"])


PLANS: dict[EventType, Plan] = {kind: _plan(kind) for kind in EventType}


def json_text(value: Any) -> str:
    """Compact JSON text of a parsed JSON value, numbers exactly as parsed
    (json.dumps cannot write a Decimal without going through a float).
    Iterative: the ingress accepts bodies nested deeper than Python recurses."""
    kind = type(value)
    if kind is dict:
        flat = _flat_object(value)  # most context objects: {"lat": 40.4, ...}
        if flat is not None:
            return flat
    if kind is not Decimal:
        try:
            return _dumps(value)  # the C encoder, when no Decimal is inside
        except (TypeError, RecursionError):
            pass
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


def _flat_object(obj: dict[str, Any]) -> str | None:
    """An object of scalars as JSON text; None when it nests."""
    parts = []
    for key, member in obj.items():
        kind = type(member)
        if kind is dict or kind is list:
            return None
        text = str(member) if kind is Decimal else _dumps(member)
        parts.append(_dumps(key) + ":" + text)
    return "{" + ",".join(parts) + "}"


# Made once: json.dumps with any non-default option builds an encoder per call.
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def set_payload(target: Message, event: RecordedEvent) -> None:
    """The typed payload of a stored event of a known type that is not
    redacted, or `payload_error` when its properties are unusable."""
    kind = event.type
    assert kind is not None and not event.redacted
    reading, fill = PLANS[kind]
    props = reading.properties(event)
    try:
        payload = reading.make(props, event.body)
    except PoisonEvent as poison:
        target.payload_error = str(poison)  # type: ignore[attr-defined]
        return
    message = fill(target, payload)
    unread = reading.unread(props)
    if unread:
        extra = message.extra  # type: ignore[attr-defined]
        for name, value in unread.items():
            extra[name] = json_text(value)
