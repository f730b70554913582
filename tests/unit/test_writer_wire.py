"""The writer link's framing and its envelope: exact both ways, frames cut
wherever the stream splits them, a corrupt length refused."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.ingest import parse_envelope
from service.writer.wire import (
    LENGTH,
    MAX_FRAME,
    Batch,
    Reply,
    frame,
    frames,
    from_wire,
    to_wire,
)
from testkit.webhooks import webhook_body

ENCODER = msgspec.msgpack.Encoder()


def test_an_envelope_arrives_as_the_ingress_parsed_it_but_for_its_parsed_body() -> None:
    raw = webhook_body("ev-1", "cus-é", "2026-03-08T12:00:00.123456+02:00", points=5)
    trace = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    env = parse_envelope(raw, "Customer balance changed", traceparent=trace)
    wired = msgspec.msgpack.decode(
        ENCODER.encode(to_wire(env)), type=type(to_wire(env))
    )
    back = from_wire(wired)
    assert (back.id, back.customer_id, back.type, back.type_name, back.raw) == (
        env.id,
        env.customer_id,
        env.type,
        env.type_name,
        env.raw,
    )
    assert (
        back.created_at == env.created_at == datetime(2026, 3, 8, 10, 0, 0, 123456, UTC)
    )
    assert back.created_at.tzinfo is not None
    assert back.traceparent == env.traceparent


@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from([0, 1]), st.integers(1, 2**62)), max_size=5),
        min_size=1,
        max_size=8,
    ),
    st.lists(st.integers(1, 40), max_size=30),
)
def test_frames_are_cut_whole_however_the_stream_splits_them(
    replies: list[list[tuple[int, int]]], cuts: list[int]
) -> None:
    sent = [Reply(i, answers) for i, answers in enumerate(replies)]
    stream = b"".join(frame(r, ENCODER) for r in sent)
    buffer, got, at = bytearray(), [], 0
    for size in [*cuts, len(stream)]:
        buffer += stream[at : at + size]
        at += size
        got += [msgspec.msgpack.decode(b, type=Reply) for b in frames(buffer)]
    assert [(r.seq, r.answers) for r in got] == [(r.seq, r.answers) for r in sent]
    assert buffer == bytearray()


def test_a_length_beyond_any_frame_is_refused() -> None:
    buffer = bytearray(LENGTH.pack(MAX_FRAME + 1) + b"x")
    with pytest.raises(ValueError, match="corrupt"):
        frames(buffer)


def test_a_batch_names_its_sequence_number() -> None:
    body = frame(Batch(7, []), ENCODER)
    assert msgspec.msgpack.decode(body[LENGTH.size :], type=Batch).seq == 7
