"""Reading event properties, and the error for an event the fold cannot use.

Policy, the same for every part:
- a missing or null property is None (or False for a flag);
- a text field takes a string; a number (int or Decimal) is taken as its
  decimal string, since senders do send codes and ids as numbers; anything else
  (bool, object, array) makes the event poison;
- a number field takes what `exact_numbers.exact` accepts, else poison;
- an id a part is keyed by (code, rewardId, claimId) must be non-blank text,
  and Balance changed's amount a number, else the event is poison;
- a property no read model uses, only carried to consumers (`loose_text`),
  never poisons: a value of another kind is left out of its typed field (it
  stays in the payload's unread properties).
Poison is decided from the event alone, never from the state, so whether an
event is dead does not depend on the order events are applied in.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .exact_numbers import Number, NumberError, exact


class PoisonEvent(ValueError):
    """An event of a known type whose properties the fold cannot use; str(e)
    is a short reason."""


Props = dict[str, Any]


def text(props: Props, name: str) -> str | None:
    value = props.get(name)
    kind = type(value)
    if value is None or kind is str:
        return value
    if kind is int or kind is Decimal:
        return str(value)
    raise PoisonEvent(f"{name} is not a string")


def loose_text(props: Props, name: str) -> str | None:
    """A carried-only text: as `text`, but None for a value of another kind."""
    value = props.get(name)
    kind = type(value)
    if kind is str:
        return value
    if kind is int or kind is Decimal:
        return str(value)
    return None


def key_text(props: Props, name: str) -> str:
    """A required id: non-blank text."""
    value = text(props, name)
    if value is None or not value.strip():
        raise PoisonEvent(f"{name} is missing")
    return value


def number(props: Props, name: str) -> Number | None:
    value = props.get(name)
    if value is None:
        return None
    try:
        return exact(value)
    except NumberError as error:
        raise PoisonEvent(f"{name} is {error}") from None


def key_number(props: Props, name: str) -> Number:
    value = number(props, name)
    if value is None:
        raise PoisonEvent(f"{name} is missing")
    return value


def integer(props: Props, name: str) -> int | None:
    """A whole number that fits a signed 32-bit field (an age)."""
    value = number(props, name)
    if value is None:
        return None
    if type(value) is not int or not -(2**31) <= value < 2**31:
        raise PoisonEvent(f"{name} is not an integer")
    return value


_FLAG_WORDS = {"true": True, "false": False}


def flag(props: Props, name: str) -> bool | None:
    """A yes/no: JSON booleans, 0/1 and "true"/"false" in any case; None when
    missing (the read models take that as False)."""
    value = props.get(name)
    if value is None:
        return None
    if type(value) is bool:
        return value
    if type(value) is int and value in (0, 1):
        return bool(value)
    if type(value) is str and value.lower() in _FLAG_WORDS:
        return _FLAG_WORDS[value.lower()]
    raise PoisonEvent(f"{name} is not a boolean")
