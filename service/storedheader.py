"""The clear header in front of every stored event: one type, one codec.

A stored state is a header, then the body sealed with the customer's data
key, the header's bytes being the seal's associated data (so a header cannot
be swapped onto another body). The header holds ids, names, times and the
trace context: never personal data.

Three versions are read; only the newest is written:

- v0 (before encryption): a JSON array `[id, customer, type, created,
  received]`, `\\n`, then the body in clear;
- v1: the same array with a sixth field, the data key id ("" when the body
  was not stored), `\\n`, then the sealed body;
- v2: byte 0x02 (a JSON header always starts with `[`), then a fixed
  little-endian block: the header's total length (so the body starts at a
  known offset, no newline search), created and received as integer
  microseconds since the Unix epoch with their UTC offsets in seconds (so a
  decoded instant is the same aware datetime v1 gave), and the byte lengths
  of five UTF-8 strings that follow: event id, customer id, type name, key
  id and the W3C `traceparent` ("" when none). No JSON, no isoformat.
"""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime, timedelta, timezone
from typing import NamedTuple

from projections.customer.timekeys import micros

V2 = 2
_V2_TAG = bytes([V2])
# version, total length, created µs, received µs, created offset s, received
# offset s, then the byte lengths of the five strings.
_FIXED = struct.Struct("<BIqqiiIIIII")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_SECOND = timedelta(seconds=1)
_json_decode = json.JSONDecoder().decode
_json_encode = json.JSONEncoder(separators=(",", ":")).encode
_fromiso = datetime.fromisoformat


class CorruptHeader(ValueError):
    """A stored state whose header none of the versions can read."""


class StoredHeader(NamedTuple):
    """What a stored event says about itself in clear.

    `key_id` is None for a v0 row (body in clear, written before encryption),
    "" when no body was stored (the customer was erased), else the id of the
    data key that sealed the body."""

    event_id: str
    customer_id: str
    type_name: str
    created_at: datetime
    received_at: datetime
    key_id: str | None
    traceparent: str = ""

    @property
    def in_clear(self) -> bool:
        """Written before encryption: the body that follows is plaintext."""
        return self.key_id is None


# Each offset's epoch, so decoding is one addition: adding a timedelta to an
# aware datetime with a fixed offset keeps that offset.
_epochs: dict[int, datetime] = {0: _EPOCH}
_START = _FIXED.size
# (µs, offset, the received time they make): the last one decoded. One
# tuple, replaced whole, so threads decoding at once never see half of one.
_received: tuple[int, int, datetime] = (0, 0, _EPOCH)
# The tuple's own constructor: StoredHeader(...) goes through a Python
# __new__ for its default, a fifth of a header's decoding.
_new_header = tuple.__new__


def _epoch_at(offset: int) -> datetime:
    epoch = _epochs.get(offset)
    if epoch is None:
        epoch = _epochs[offset] = _EPOCH.astimezone(timezone(offset * _SECOND))
    return epoch


def _instant(when: datetime) -> tuple[int, int]:
    if when.tzinfo is UTC:  # what the service writes: no offset to work out
        return micros(when), 0
    offset = when.utcoffset()
    if offset is None:
        raise ValueError("a stored time must be timezone-aware")
    seconds, rest = divmod(offset, _SECOND)
    if rest:
        raise ValueError("a stored time's UTC offset must be whole seconds")
    return micros(when), seconds


def encode_header(header: StoredHeader) -> bytes:
    """The v2 bytes of `header` (its key id must not be None: v0 is never
    written again)."""
    event_id, customer_id, type_name, created_at, received_at, key_id, trace = header
    if key_id is None:
        raise ValueError("v2 headers always name a key id ('' for none)")
    created, created_offset = _instant(created_at)
    received, received_offset = _instant(received_at)
    text = event_id + customer_id + type_name + key_id + trace
    if text.isascii():  # the usual case: one encode, lengths in characters
        lengths = map(len, (event_id, customer_id, type_name, key_id, trace))
        data = text.encode()
    else:
        parts = [t.encode() for t in (event_id, customer_id, type_name, key_id, trace)]
        lengths = map(len, parts)
        data = b"".join(parts)
    return (
        _FIXED.pack(
            V2,
            _FIXED.size + len(data),
            created,
            received,
            created_offset,
            received_offset,
            *lengths,
        )
        + data
    )


def encode_v1(header: StoredHeader) -> bytes:
    """The v1 JSON bytes, as the version before v2 wrote them (kept for the
    tests of old stores and the codec bench; the service writes v2)."""
    return _json_encode(
        [
            header.event_id,
            header.customer_id,
            header.type_name,
            header.created_at.isoformat(),
            header.received_at.isoformat(),
            "" if header.key_id is None else header.key_id,
        ]
    ).encode()


def decode_header(state: bytes) -> tuple[StoredHeader, bytes, bytes]:
    """(header, its bytes as written, the body after it) for a stored state
    of any version; the header's bytes are the body's associated data."""
    global _received
    if state[:1] == _V2_TAG:
        try:
            _v, size, created, received, c_off, r_off, *lengths = _FIXED.unpack_from(
                state
            )
            texts = _texts(state[_START:size], lengths)
        except (struct.error, UnicodeDecodeError) as e:
            raise CorruptHeader(f"unreadable v2 header: {e}") from None
        if _START + sum(lengths) != size or size > len(state):
            raise CorruptHeader("a v2 header's lengths do not add up")
        # The events of one group commit share their received time: the
        # last one decoded is made again only when it changes.
        last = _received
        if last[0] == received and last[1] == r_off:
            received_at = last[2]
        else:
            received_at = _epoch_at(r_off) + received * _US
            _received = (received, r_off, received_at)
        return (
            _new_header(
                StoredHeader,
                (
                    texts[0],
                    texts[1],
                    texts[2],
                    _epoch_at(c_off) + created * _US,
                    received_at,
                    texts[3],
                    texts[4],
                ),
            ),
            state[:size],
            state[size:],
        )
    raw, newline, body = state.partition(b"\n")
    try:
        fields = _json_decode(raw.decode()) if newline else None
    except ValueError:
        fields = None
    if not isinstance(fields, list) or len(fields) not in (5, 6):
        raise CorruptHeader("not a stored header of any known version")
    try:
        header = StoredHeader(
            fields[0],
            fields[1],
            fields[2],
            _fromiso(fields[3]),
            _fromiso(fields[4]),
            fields[5] if len(fields) == 6 else None,
        )
    except (TypeError, ValueError) as e:
        raise CorruptHeader(f"unreadable JSON header: {e}") from None
    return header, raw, body


def _texts(block: bytes, lengths: list[int]) -> list[str]:
    text = block.decode()
    a, b, c, d, _e = lengths
    if len(text) == len(block):  # ASCII: byte offsets are character offsets
        ab, abc = a + b, a + b + c
        return [
            text[:a],
            text[a:ab],
            text[ab:abc],
            text[abc : abc + d],
            text[abc + d :],
        ]
    texts, at = [], 0
    for length in lengths:
        texts.append(block[at : at + length].decode())
        at += length
    return texts
