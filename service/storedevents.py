"""How a webhook is stored: a header in clear (service/storedheader.py), then
the body encrypted with its customer's data key; and stored rows read back
as events, decrypted where the key is live."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from eventsourcing.persistence import StoredEvent

from projections.events import ERASURE, REDACTED_EVENT, EventType, RecordedEvent
from service.ingest import Envelope, loads
from service.keyring import CustomerKey, Keyring
from service.livekeys import UNREAD, Unread
from service.sealing import seal, unseal
from service.storedheader import StoredHeader, decode_header, encode_header

# Fixed forever: changing it would let old ids be stored again.
ID_NAMESPACE = uuid.UUID("6f1c3c55-3f0e-5d57-9a55-4f2f6c0b7a11")
ERASURE_NAMESPACE = uuid.UUID("0d6b8a53-1f2e-5c4b-8d9a-7e3f2a1b0c99")
TOPIC_PREFIX = "jericommerce:"
UNKNOWN_TOPIC = TOPIC_PREFIX + "UNKNOWN"
# Not a JeriCommerce event: written by an erasure, never by a webhook.
ERASURE_TOPIC = "loyalty:CustomerErased"
ERASURE_NAME = "Customer erased"
REDACTED = ""  # the key id of an event stored without its body


_NAMESPACE_BYTES = ID_NAMESPACE.bytes
# uuid5's version and variant bits, set as uuid.UUID(version=5) sets them.
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_SET = (5 << 76) | (0x8000 << 48)


def originator_id(event_id: str) -> uuid.UUID:
    """uuid.uuid5(ID_NAMESPACE, event_id), in half the time: the
    namespace's bytes are kept, and the UUID is made from an int, not by
    re-checking the bytes (tests/unit/test_stored_ids.py compares them)."""
    digest = hashlib.sha1(_NAMESPACE_BYTES + event_id.encode()).digest()
    return uuid.UUID(int=(int.from_bytes(digest[:16]) & _CLEAR) | _SET)


def topic_for(event_type: EventType | None) -> str:
    return UNKNOWN_TOPIC if event_type is None else TOPIC_PREFIX + event_type.name


def sealed(
    envelope: Envelope,
    received_at: datetime,
    key: CustomerKey,
    traceparent: str = "",
    oid: uuid.UUID | None = None,
    nonce: bytes | None = None,
) -> tuple[StoredHeader, StoredEvent]:
    """The header in clear (ids, names, times and the trace context: no
    personal data), then the request body encrypted with the customer's data
    key, the header as associated data; with the header, so the append can
    hand over what it stored without decoding it again. An event created at
    or before its customer's erasure keeps only the header: nothing personal
    is stored. `oid` is `originator_id(envelope.id)` where the caller has it
    already (uuid5 is a SHA-1: once per event is enough); `nonce`, the
    seal's, where the caller drew it (`sealing.nonces`)."""
    erased = key.erased_at is not None and envelope.created_at <= key.erased_at
    aead = None if erased else key.aead
    key_id = key.key_id if aead is not None and key.key_id is not None else REDACTED
    header = StoredHeader(
        envelope.id,
        envelope.customer_id,
        envelope.type_name,
        envelope.created_at,
        received_at,
        key_id,
        traceparent,
    )
    written = encode_header(header)
    payload = (
        b""
        if aead is None or key_id == REDACTED
        else seal(aead, envelope.raw, written, nonce)
    )
    return header, StoredEvent(
        originator_id=originator_id(envelope.id) if oid is None else oid,
        originator_version=1,
        topic=_TOPICS[envelope.type],
        state=written + payload,
    )


def erasure_marker(customer_id: str, erased_at: datetime) -> StoredEvent:
    """The log's record that a customer was erased: the projections delete
    their read models when they reach it, in order, so no batch in flight
    and no rebuild brings them back."""
    marker_id = f"{customer_id}\x00{erased_at.isoformat()}"
    header = StoredHeader(
        marker_id, customer_id, ERASURE_NAME, erased_at, erased_at, REDACTED
    )
    return StoredEvent(
        originator_id=uuid.uuid5(ERASURE_NAMESPACE, marker_id),
        originator_version=1,
        topic=ERASURE_TOPIC,
        state=encode_header(header),
    )


_TYPES: dict[str, EventType | None] = {topic_for(t): t for t in EventType}
# An enum member's .name goes through a descriptor: once per type, not event.
_TOPICS: dict[EventType | None, str] = {t: topic for topic, t in _TYPES.items()}
_TOPICS[None] = UNKNOWN_TOPIC
Row = tuple[int, str, bytes]


# A stored row opened, in `event_of`'s order: position, event id, topic, type
# name, customer id, created and received, the decrypted body (None when it
# has none or its key is gone), kind, trace context. Also the rebuild
# reader's wire format (service/rebuildreader.py).
Opened = tuple[int, str, str, str, str, datetime, datetime, bytes | None, str, str]


def open_rows(
    rows: Sequence[Row], keyring: Keyring, epoch: str | Unread | None = UNREAD
) -> list[Opened]:
    """Stored rows decrypted where the customer's key is live. An erased
    customer's events have no body: ids, type, times and position only. Rows
    from before encryption (v0 headers) are read as they were written.
    `epoch`: the key epoch read with the rows (`PositionIndex.scan`), else
    read now."""
    parsed = []
    wanted: set[str] = set()
    for position, topic, state in rows:
        header, aad, payload = decode_header(state)
        if header.key_id:
            wanted.add(header.customer_id)
        parsed.append((position, topic, header, aad, payload))
    live = keyring.live(wanted, epoch) if wanted else {}
    opened: list[Opened] = []
    for position, topic, header, aad, payload in parsed:
        raw: bytes | None = payload
        key_id = header.key_id
        if key_id is not None:
            key = live.get(header.customer_id) if key_id else None
            # Another key id than the live one: a key destroyed by an erasure.
            ok = key is not None and key[0] == key_id
            raw = unseal(key[1], payload, aad) if ok else None  # type: ignore[index]
        if topic == ERASURE_TOPIC:
            kind = ERASURE
        elif raw is None:
            kind = REDACTED_EVENT
        else:
            kind = ""
        opened.append(
            (
                position,
                header.event_id,
                topic,
                header.type_name,
                header.customer_id,
                header.created_at,
                header.received_at,
                raw,
                kind,
                header.traceparent,
            )
        )
    return opened


def decode_rows(
    rows: Sequence[Row], keyring: Keyring, epoch: str | Unread | None = UNREAD
) -> list[RecordedEvent]:
    """Stored rows as events (`open_rows`), each body parsed."""
    return [event_of(*fields) for fields in open_rows(rows, keyring, epoch)]


def event_of(
    position: int,
    event_id: str,
    topic: str,
    type_name: str,
    customer_id: str,
    created_at: datetime,
    received_at: datetime,
    raw: bytes | None,
    kind: str,
    traceparent: str,
) -> RecordedEvent:
    """The event an opened row's fields make, its body parsed (`raw` is
    None for an event with no body)."""
    return RecordedEvent(
        position,
        event_id,
        _TYPES.get(topic),
        type_name,
        customer_id,
        created_at,
        received_at,
        {} if raw is None else loads(raw),
        b"" if raw is None else raw,
        kind,
        traceparent,
    )


def recorded(
    position: int,
    topic: str,
    header: StoredHeader,
    body: dict[str, Any],
    raw: bytes,
    kind: str = "",
) -> RecordedEvent:
    """The event a stored row's header and its (decrypted) body make."""
    return RecordedEvent(
        position,
        header.event_id,
        _TYPES.get(topic),
        header.type_name,
        header.customer_id,
        header.created_at,
        header.received_at,
        body,
        raw,
        kind,
        header.traceparent,
    )
