"""CustomerState <-> bytes: one compact JSON array, version first.

The state holds only JSON values (see state.py), so this is a single C-level
call each way. Keys are sorted so that equal states encode to equal bytes
whatever order their maps were filled in.

Two versions, one layout. Version 2 is written by orjson (several times
faster than the stdlib, and decoding states is on every read and every
applied batch). orjson refuses what the stdlib takes (ints beyond 64 bits,
lone surrogates) and would read a big int back as a float, so a state it
refuses is written by the stdlib as version 1, and only version 2 is read
back with orjson. States written before version 2 existed are version 1 too.
"""

from __future__ import annotations

import json
from dataclasses import fields
from operator import attrgetter

import orjson

from .state import CustomerState

VERSION = 2
STDLIB_VERSION = 1

_NAMES = tuple(f.name for f in fields(CustomerState))
_values = attrgetter(*_NAMES)
_stdlib_encode = json.JSONEncoder(
    separators=(",", ":"), sort_keys=True, check_circular=False
).encode
_stdlib_decode = json.JSONDecoder().decode
_ORJSON_PREFIX = b"[%d," % VERSION


def encode_state(state: CustomerState) -> bytes:
    values = _values(state)
    try:
        return orjson.dumps((VERSION, *values), option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return _stdlib_encode((STDLIB_VERSION, *values)).encode()


def decode_state(data: bytes | bytearray | memoryview) -> CustomerState:
    """Raises ValueError for bytes not made by encode_state (the caller then
    rebuilds the customer from their events)."""
    if data[:3] == _ORJSON_PREFIX:
        values = orjson.loads(data)  # JSONDecodeError is a ValueError
        version = VERSION
    else:
        values = _stdlib_decode(str(data, "utf-8"))  # bytes, bytearray, memoryview
        version = STDLIB_VERSION
    if (
        type(values) is not list
        or len(values) != len(_NAMES) + 1
        or values[0] != version
    ):
        raise ValueError("not a customer state of this version")
    return CustomerState(*values[1:])
