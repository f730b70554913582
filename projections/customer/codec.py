"""CustomerState <-> bytes: one compact JSON array, version first.

The state holds only JSON values (see state.py), so this is a single C-level
json call each way. Keys are sorted so that equal states encode to equal
bytes whatever order their maps were filled in.
"""

from __future__ import annotations

import json
from dataclasses import fields
from operator import attrgetter

from .state import CustomerState

VERSION = 1

_NAMES = tuple(f.name for f in fields(CustomerState))
_values = attrgetter(*_NAMES)
_encode = json.JSONEncoder(
    separators=(",", ":"), sort_keys=True, check_circular=False
).encode
_decode = json.JSONDecoder().decode


def encode_state(state: CustomerState) -> bytes:
    return _encode((VERSION, *_values(state))).encode()


def decode_state(data: bytes | bytearray | memoryview) -> CustomerState:
    """Raises ValueError for bytes not made by this version's encode_state
    (the caller then rebuilds the customer from their events)."""
    values = _decode(str(data, "utf-8"))  # bytes, bytearray or memoryview
    if (
        type(values) is not list
        or len(values) != len(_NAMES) + 1
        or values[0] != VERSION
    ):
        raise ValueError("not a customer state of this version")
    return CustomerState(*values[1:])
