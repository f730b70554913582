"""The stored header's codec: every old version reads as it was written, and
the current one round-trips any header exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.storedheader import (
    CorruptHeader,
    StoredHeader,
    decode_header,
    encode_header,
    encode_v1,
)

T = datetime(2026, 3, 8, 12, 0, 0, 250000, tzinfo=UTC)
# Written by the version before v2 (its make_header), byte for byte.
V1 = (
    b'["evt-1","cust-a","Balance changed","2026-03-08T12:00:00.250000+00:00",'
    b'"2026-03-08T12:00:00.250000+00:00","k1"]'
)
# Written before encryption: five fields, the body in clear after it.
V0 = (
    b'["evt-6","cust-c","Balance changed","2026-03-08T12:00:06+00:00",'
    b'"2026-03-09T09:00:00.123456+00:00"]'
)


def test_v0_reads_as_written_in_clear() -> None:
    header, aad, body = decode_header(V0 + b"\n" + b'{"id":"evt-6"}')
    assert header == StoredHeader(
        "evt-6",
        "cust-c",
        "Balance changed",
        datetime(2026, 3, 8, 12, 0, 6, tzinfo=UTC),
        datetime(2026, 3, 9, 9, 0, 0, 123456, tzinfo=UTC),
        None,
    )
    assert header.in_clear
    assert (aad, body) == (V0, b'{"id":"evt-6"}')


def test_v1_reads_as_written_with_its_key_id() -> None:
    sealed = b"\x00\n\x01sealed bytes may hold newlines\n"
    header, aad, body = decode_header(V1 + b"\n" + sealed)
    assert header == StoredHeader("evt-1", "cust-a", "Balance changed", T, T, "k1")
    assert not header.in_clear and header.traceparent == ""
    assert (aad, body) == (V1, sealed)
    assert encode_v1(header) == V1  # the tests' v1 writer is the old one


def test_v1_redacted_event_has_an_empty_key_id() -> None:
    header, _, body = decode_header(V1.replace(b'"k1"', b'""') + b"\n")
    assert header.key_id == "" and not header.in_clear and body == b""


def test_v2_is_lean_and_never_looks_like_json() -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    header = StoredHeader("evt-1", "cust-a", "Balance changed", T, T, "k1", traceparent)
    data = encode_header(header)
    assert data[:1] == b"\x02" and b"[" not in data[:1]
    assert b"2026" not in data  # times are integers, not ISO text
    decoded, aad, body = decode_header(data + b"\n sealed")
    assert decoded == header and aad == data and body == b"\n sealed"
    untraced = encode_header(header._replace(traceparent=""))
    assert len(untraced) < len(V1)


def test_v2_keeps_the_original_offset() -> None:
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2026, 3, 8, 14, 0, tzinfo=plus_two)
    header = StoredHeader("e", "c", "t", created, T, "")
    decoded = decode_header(encode_header(header))[0]
    assert decoded.created_at.utcoffset() == timedelta(hours=2)
    assert decoded.created_at.isoformat() == created.isoformat()
    assert decoded.received_at.tzinfo is UTC


@pytest.mark.parametrize(
    "state",
    [
        b"",
        b"\x02\x00\x01",
        b"not json\n",
        b'["a","b"]\n',
        b'{"a":1}\n',
        b'["a","b","c","2026-03-08T12:00:00+00:00","2026-03-08"]',  # no newline
        b'["a","b","c","not a time","2026-03-08T12:00:00+00:00",""]\n',
    ],
)
def test_unreadable_headers_are_refused(state: bytes) -> None:
    with pytest.raises(CorruptHeader):
        decode_header(state)


def test_a_v2_header_whose_lengths_overrun_is_refused() -> None:
    data = encode_header(StoredHeader("evt-1", "c", "t", T, T, "k1"))
    with pytest.raises(CorruptHeader):
        decode_header(data[:-3])


def test_v0_is_never_written_again() -> None:
    with pytest.raises(ValueError):
        encode_header(StoredHeader("e", "c", "t", T, T, None))


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        encode_header(StoredHeader("e", "c", "t", T.replace(tzinfo=None), T, ""))


texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
offsets = st.integers(-86399, 86399).map(lambda s: timezone(timedelta(seconds=s)))
times = st.builds(
    lambda naive, tz: naive.replace(tzinfo=tz),
    st.datetimes(datetime(2, 1, 1), datetime(9998, 12, 31)),
    offsets,
)
headers = st.builds(
    StoredHeader,
    texts,
    texts,
    texts,
    times,
    times,
    texts,
    st.one_of(st.just(""), texts),
)


def _same(a: StoredHeader, b: StoredHeader) -> None:
    assert a == b
    # Equal instants are not enough: the same offset, as v1 gave back.
    assert a.created_at.utcoffset() == b.created_at.utcoffset()
    assert a.received_at.utcoffset() == b.received_at.utcoffset()


@given(header=headers, body=st.binary(max_size=40))
def test_v2_round_trips_any_header(header: StoredHeader, body: bytes) -> None:
    data = encode_header(header)
    decoded, aad, rest = decode_header(data + body)
    _same(decoded, header)
    assert aad == data and rest == body


@given(header=headers.map(lambda h: h._replace(traceparent="")))
def test_v1_and_v2_decode_to_the_same_header(header: StoredHeader) -> None:
    from_v1 = decode_header(encode_v1(header) + b"\n")[0]
    from_v2 = decode_header(encode_header(header))[0]
    _same(from_v1, from_v2)
