"""The stored bodies' parse (`loads`: msgspec where it can) gives exactly
what the exact decoder (`loads_exact`) gives, or fails as it does."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.ingest import loads, loads_exact

NUMBERS = st.one_of(
    st.integers(),  # beyond 64 bits too
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
LEAVES = st.one_of(
    st.none(), st.booleans(), st.text(), NUMBERS.map(lambda n: RawNumber(str(n)))
)


class RawNumber(str):
    """A number written as its own text (1.50 stays 1.50)."""


def write(value: Any) -> str:
    if isinstance(value, RawNumber):
        return str(value)
    if isinstance(value, dict):
        pairs = (f"{json.dumps(k)}:{write(v)}" for k, v in value.items())
        return "{" + ",".join(pairs) + "}"
    if isinstance(value, list):
        return "[" + ",".join(write(v) for v in value) + "]"
    return json.dumps(value)


def outcome(parse: Any, raw: bytes) -> tuple[str, str]:
    try:
        return ("ok", repr(parse(raw)))  # repr tells 1.50 from 1.5, int from float
    except Exception as e:
        return ("error", type(e).__name__)


@given(
    st.recursive(
        LEAVES,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_same_values_as_the_exact_decoder(value: Any) -> None:
    raw = write(value).encode("utf-8", "surrogatepass")
    assert outcome(loads, raw) == outcome(loads_exact, raw)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"amount":1.50,"createdAt":"2025-01-01T00:00:41.000Z"}',
        b'{"a":{"b":[1,{"c":2E3}]}}',
        b'{"a":18446744073709551616,"b":-9223372036854775809}',
        b'{"a":"\\ud800"}',
        b'{"a":NaN}',
        b'{"a":1E400}',
        b'{"a":"\xff"}',
        b"\xef\xbb\xbf{}",
        b'{"a":1,"a":2}',
        b"1.5",
    ],
)
def test_edges_same_as_the_exact_decoder(raw: bytes) -> None:
    assert outcome(loads, raw) == outcome(loads_exact, raw)
