"""CustomerState <-> bytes: one compact JSON array, version first.

The state holds only JSON values and registers (NamedTuples, written as
arrays; see state.py), so encoding is a single C-level call; decoding is one
call plus turning each register's array back into its named type. Keys are
sorted so that equal states encode to equal bytes
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

from .state import REGISTER_MAPS, REGISTERS, CustomerState

VERSION = 2
STDLIB_VERSION = 1

_NAMES = tuple(f.name for f in fields(CustomerState))
_values = attrgetter(*_NAMES)
_stdlib_encode = json.JSONEncoder(
    separators=(",", ":"), sort_keys=True, check_circular=False
).encode
_stdlib_decode = json.JSONDecoder().decode
_ORJSON_PREFIX = b"[%d," % VERSION
# Positions in the encoded array (the version comes first) of the registers.
_AT = {name: i for i, name in enumerate(_NAMES, 1)}
_REGISTER_AT = tuple((_AT[name], kind) for name, kind in REGISTERS.items())
_MAP_AT = tuple((_AT[name], kind) for name, kind in REGISTER_MAPS.items())
# A NamedTuple from a list in one C call (its own constructor is a Python
# function taking each field as an argument: twice the decoding time).
_as = tuple.__new__


def encode_state(state: CustomerState) -> bytes:
    values = _values(state)
    try:
        # orjson writes no NamedTuple by itself: `tuple` makes each an array.
        return orjson.dumps(
            (VERSION, *values), default=tuple, option=orjson.OPT_SORT_KEYS
        )
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
    try:
        for i, kind in _REGISTER_AT:
            if values[i] is not None:
                values[i] = _as(kind, values[i])
        for i, kind in _MAP_AT:
            held = values[i]
            if held:
                values[i] = {key: _as(kind, v) for key, v in held.items()}
    except (TypeError, AttributeError) as e:
        raise ValueError(f"not a customer state of this version: {e}") from None
    return CustomerState(*values[1:])
