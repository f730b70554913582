"""Exact numbers: ints where integral, else canonical Decimals, never floats.

Canonical means one spelling per value (Decimal("1.50") becomes Decimal("1.5"),
Decimal("2.0") becomes 2), so sums come out identical whatever order they are
made in, down to the encoded bytes. In the fold state a Decimal is held as its
string (JSON has no Decimal); an int is held as itself.

Values are bounded (|x| < 1e30, at most 30 decimal places): within that,
every sum made with `_EXACT` is exact, and a hostile "1e999999999" cannot
make us build a billion-digit number.
"""

from __future__ import annotations

import decimal
import math
import re
from decimal import Decimal
from typing import overload

Number = int | Decimal
Stored = int | str  # how a Number sits in the fold state

_LIMIT = 10**30
_MAX_PLACES = 30
_EXACT = decimal.Context(
    prec=100,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=[decimal.InvalidOperation, decimal.Inexact, decimal.Rounded],
)
# JSON number syntax (leading zeros tolerated) for numbers sent as strings.
_NUMERIC = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\Z")


class NumberError(ValueError):
    """Not a usable number; str(e) says why in a few words."""


def exact(value: object) -> Number:
    """The canonical exact number a JSON value denotes, or NumberError.

    Accepts ints, Decimals (how the body is parsed), numeric strings and, in
    case a caller parsed without parse_float=Decimal, finite floats by their
    shortest repr. Rejects bools, NaN/Infinity and anything else.
    """
    if type(value) is int:
        if -_LIMIT < value < _LIMIT:
            return value
        raise NumberError("out of range")
    if type(value) is Decimal:
        number = value
    elif type(value) is str and _NUMERIC.match(value):
        try:
            number = Decimal(value)
        except decimal.DecimalException:
            raise NumberError("out of range") from None
    elif type(value) is float and math.isfinite(value):
        number = Decimal(repr(value))
    else:
        raise NumberError("not a number")
    return _canonical(number)


def _canonical(number: Decimal) -> Number:
    """Bounds-checked canonical form of a number from an event."""
    if not number.is_finite():
        raise NumberError("not a number")
    if number.is_zero():
        return 0
    if number.adjusted() >= 30:
        raise NumberError("out of range")
    try:
        number = _EXACT.normalize(number)
    except decimal.DecimalException:
        raise NumberError("too precise") from None
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite, checked above
    if exponent < -_MAX_PLACES:
        raise NumberError("too precise")
    return int(number) if exponent >= 0 else number


def add(a: Number, b: Number) -> Number:
    """a + b, exactly, in canonical form. Unbounded: a sum may outgrow the
    bounds on a single number; 100 digits of precision keep it exact for any
    realistic count of terms (and a Rounded trap would say so otherwise)."""
    if type(a) is int and type(b) is int:
        return a + b
    total = _EXACT.add(a, b)
    if total.is_zero():
        return 0
    total = _EXACT.normalize(total)
    exponent = total.as_tuple().exponent
    assert isinstance(exponent, int)
    return int(total) if exponent >= 0 else total


@overload
def store(number: Number) -> Stored: ...
@overload
def store(number: None) -> None: ...
def store(number: Number | None) -> Stored | None:
    """The JSON-friendly form of a number for the fold state."""
    if number is None or type(number) is int:
        return number
    return str(number)


@overload
def load(stored: Stored) -> Number: ...
@overload
def load(stored: None) -> None: ...
def load(stored: Stored | None) -> Number | None:
    """Inverse of `store`."""
    if stored is None or type(stored) is int:
        return stored
    return Decimal(stored)
