"""Event times as integer microseconds: exact, any offset, either way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from projections.customer.timekeys import EPOCH, at, micros

offsets = st.integers(min_value=-23 * 60, max_value=23 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)


@given(st.datetimes(timezones=st.one_of(st.none(), offsets)))
def test_micros_counts_from_the_epoch_a_naive_time_being_utc(when: datetime) -> None:
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    assert micros(when) == (aware - EPOCH) // timedelta(microseconds=1)


@given(st.integers(min_value=micros(datetime.min), max_value=micros(datetime.max)))
def test_at_and_micros_invert_each_other(us: int) -> None:
    assert micros(at(us)) == us


def test_before_the_epoch_counts_down() -> None:
    assert micros(datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)) == -1
