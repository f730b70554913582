"""Times and exact numbers as the protos carry them.

Point quantities follow the "Numbers" convention of customer.proto: an int64
whole part truncated toward zero plus an exact `_decimal` text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def seconds_nanos(when: datetime) -> tuple[int, int]:
    # Plain arithmetic: several times faster than Timestamp.FromDatetime, and
    # exact to the microsecond. A naive time is UTC, as in the fold.
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - _EPOCH
    return delta.days * 86400 + delta.seconds, delta.microseconds * 1000


def timestamp(when: datetime | None) -> Timestamp | None:
    if when is None:
        return None
    seconds, nanos = seconds_nanos(when)
    return Timestamp(seconds=seconds, nanos=nanos)


def decimal_text(number: int | Decimal) -> str:
    """Canonical exact text: no exponent, no trailing zeros, no "-0"."""
    if type(number) is int:
        return str(number)
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def number(name: str, value: int | Decimal | None) -> dict[str, Any]:
    """`name` and `name_decimal` constructor arguments; none for None."""
    if value is None:
        return {}
    # int() truncates toward zero. The fold admits |x| < 1e30, beyond int64:
    # saturate the whole part rather than fail the call; the text stays exact.
    whole = min(max(int(value), INT64_MIN), INT64_MAX)
    return {name: whole, f"{name}_decimal": decimal_text(value)}
