"""What an ingress process and the store's writer process say to each other.

One Unix stream socket per ingress process, carrying length-prefixed
MessagePack frames both ways. An ingress sends `Batch`es of the envelopes
its requests are waiting on, several in flight at once; the writer answers
each with a `Reply` naming the same `seq`, once the batch is durably
committed (or with the reason it could not be). The parsed body never
travels: the store keeps the raw bytes, and only they are sealed.
"""

from __future__ import annotations

import struct
from datetime import datetime
from pathlib import Path

import msgspec

from service.backends.sqlite.notify import address as channel_address
from service.ingest import Envelope, event_type

# A frame's length before its bytes. A batch carries at most what the
# requests in flight carry, each at most MAX_BODY_BYTES; this is a bound
# against a corrupt length, far above any real frame.
LENGTH = struct.Struct("!I")
MAX_FRAME = 1 << 30
ACCEPTED, DUPLICATE = 0, 1


class Event(msgspec.Struct, array_like=True):
    id: str
    customer_id: str
    created_at: datetime  # aware UTC: MessagePack's timestamp, exact to the ns
    type_name: str
    raw: bytes
    traceparent: str


class Batch(msgspec.Struct, array_like=True):
    seq: int
    events: list[Event]


class Reply(msgspec.Struct, array_like=True):
    seq: int
    # (ACCEPTED | DUPLICATE, position) per event, in order; None with `error`.
    answers: list[tuple[int, int]] | None
    error: str = ""


def address(data_dir: Path) -> bytes:
    """The writer's abstract socket address for the store in `data_dir`: it
    vanishes with the process, so a SIGKILL leaves nothing stale behind."""
    return channel_address(data_dir, "writer")


def frame(message: Batch | Reply, encoder: msgspec.msgpack.Encoder) -> bytes:
    body = encoder.encode(message)
    return LENGTH.pack(len(body)) + body


def frames(buffer: bytearray) -> list[bytes]:
    """Cut the complete frames off the front of `buffer` (what is left is
    the start of the next one)."""
    out = []
    start, end = 0, len(buffer)
    while end - start >= LENGTH.size:
        (size,) = LENGTH.unpack_from(buffer, start)
        if size > MAX_FRAME:
            raise ValueError(f"a frame of {size} bytes: the stream is corrupt")
        if end - start - LENGTH.size < size:
            break
        start += LENGTH.size
        out.append(bytes(buffer[start : start + size]))
        start += size
    del buffer[:start]
    return out


def to_wire(env: Envelope) -> Event:
    return Event(
        env.id, env.customer_id, env.created_at, env.type_name, env.raw, env.traceparent
    )


def from_wire(event: Event) -> Envelope:
    """The envelope the store appends. Its parsed body stays in the ingress:
    the append seals the raw bytes, and the writer runs no projections."""
    return Envelope(
        id=event.id,
        customer_id=event.customer_id,
        created_at=event.created_at,
        type=event_type(event.type_name),
        type_name=event.type_name,
        body={},
        raw=event.raw,
        traceparent=event.traceparent,
    )
