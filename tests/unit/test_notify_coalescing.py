"""A burst of NOTIFYs becomes one callback per channel and generation."""

from __future__ import annotations

from psycopg import Notify

from service.backends.postgres.notify import coalesce


def note(channel: str, payload: str) -> Notify:
    return Notify(channel, payload, 1)


def test_a_burst_of_new_event_notes_is_one_callback() -> None:
    assert coalesce([note("events", "")] * 50) == [("events", "")]


def test_applied_positions_keep_the_last_per_schema_and_generation() -> None:
    burst = [
        note("loyalty_applied", "s1:1:10"),
        note("events", ""),
        note("loyalty_applied", "s1:2:3"),  # a rebuild's generation
        note("loyalty_applied", "s2:1:7"),  # another schema
        note("loyalty_applied", "s1:1:12"),
        note("events", ""),
    ]
    assert coalesce(burst) == [
        ("loyalty_applied", "s1:2:3"),
        ("loyalty_applied", "s2:1:7"),
        ("loyalty_applied", "s1:1:12"),
        ("events", ""),
    ]


def test_nothing_in_nothing_out() -> None:
    assert coalesce([]) == []
