"""The rebuild reader's wire format (service/rebuildreader.py): a batch of
opened rows comes out as the events the store's own read makes, times with
the UTC offsets their headers keep included (MessagePack alone keeps only
the instant)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from service.rebuildreader import BATCH, pack, unpack
from service.storedevents import Opened, event_of

ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
)
AWARE = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=ZONES
)
TIMES = AWARE | st.datetimes()  # naive: only ever in a hand-made old header
OPENED = st.tuples(
    st.integers(1, 2**62),
    st.text(max_size=8),
    st.sampled_from(["jericommerce:BALANCE_CHANGED", "jericommerce:UNKNOWN", "x"]),
    st.text(max_size=8),
    st.text(max_size=8),
    TIMES,
    TIMES,
    st.none()
    | st.sampled_from([b"{}", b'{"amount": 1.50, "n": 12345678901234567890}']),
    st.sampled_from(["", "redacted", "erasure"]),
    st.text(max_size=8),
)


def fields(when: datetime) -> tuple[datetime, object]:
    return when, when.utcoffset()


@given(st.lists(OPENED, max_size=5))
def test_a_batch_reads_back_as_the_store_reads_it(batch: list[Opened]) -> None:
    got = unpack(BATCH.decode(pack(batch)))  # type: ignore[arg-type]
    want = [event_of(*item) for item in batch]
    assert got == want
    for g, w in zip(got, want, strict=True):
        assert fields(g.created_at) == fields(w.created_at)
        assert fields(g.received_at) == fields(w.received_at)


def test_offsets_survive_the_wire() -> None:
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2026, 3, 8, 12, 0, tzinfo=plus_two)
    received = datetime(2026, 3, 8, 10, 0, 1, tzinfo=UTC)
    item: Opened = (1, "e1", "x", "T", "c1", created, received, None, "", "")
    [event] = unpack(BATCH.decode(pack([item])))  # type: ignore[arg-type]
    assert event.created_at.utcoffset() == timedelta(hours=2)
    assert event.created_at.isoformat() == "2026-03-08T12:00:00+02:00"
    assert event.received_at.tzinfo is UTC
