"""Replaying streams hold one page each, and give it back when they end."""

from __future__ import annotations

import sys

import pytest

from bench.stream_memory import measure

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]


def test_stalled_replaying_streams_hold_bounded_memory() -> None:
    """100 clients replay 1,000 events each and stall after the first, twice.
    Flow control holds the server back, so it holds a page per stream, not
    the history (reading 500 events ahead per stream cost ~96 MB here), and
    the second round fits in what the first gave back."""
    r = measure(streams=100, events=1000, stall=2.0, rounds=2)
    print(r)
    assert r["failed_streams"] == 0
    assert r["rss_peak_mb"] - r["rss_before_mb"] < 45
    assert r["rss_peak_last_round_mb"] - r["rss_peak_mb"] < 10
