"""The writer shape's ceilings in `make bench`: each core's CPU an event in
the best round, turned into the rate that would keep that core busy."""

from __future__ import annotations

import pytest

from bench.p1_writer import writer_rows
from bench.wrk import WrkResult


def _run(rps: float, cpu_share: float, gen_share: float) -> WrkResult:
    seconds = 10.0
    return WrkResult(
        rps=rps,
        requests=int(rps * seconds),
        ok=int(rps * seconds),
        accepted=int(rps * seconds),
        duplicate=0,
        non2xx=0,
        errors=0,
        exhausted=False,
        p50_ms=1.0,
        p99_ms=2.0,
        max_ms=3.0,
        seconds=seconds,
        cpu_share=cpu_share,
        gen_share=gen_share,
    )


def test_ceilings_come_from_the_best_rounds_cpu_an_event() -> None:
    base = _run(30_000, 0.99, 0.5)
    # Best round: 12,000 req/s; the ingress 0.72 of its core (60 us an
    # event), the tree 1.32 cores (110 us), wrk 0.30 of its core (25 us):
    # the generator core carries 110 - 60 + 25 = 75 us an event.
    runs = [_run(10_000, 1.2, 0.3), _run(12_000, 1.32, 0.3)]
    own = [7.0, 0.72 * 10.0]
    rate, ingress, generator = writer_rows(runs, own, base)

    assert rate.figure == 12_000
    assert rate.ratio == pytest.approx(0.4)
    assert rate.passed is False
    assert ingress.figure == pytest.approx(1e6 / 60)
    assert ingress.ratio == pytest.approx(1e6 / 60 / 30_000)
    assert generator.figure == pytest.approx(1e6 / 75)
    assert generator.ratio == pytest.approx(1e6 / 75 / 30_000)
    assert "wrk 25 us" in generator.note and "supervisor 50 us" in generator.note
    assert ingress.passed is None and generator.passed is None


def test_a_round_answered_with_errors_fails_the_rate() -> None:
    # 503s come back faster than stored events: such a rate proves nothing.
    base = _run(30_000, 0.99, 0.5)
    fast = _run(20_000, 1.0, 0.3)
    assert writer_rows([fast], [5.0], base)[0].passed is True
    fast.non2xx = 3
    rate = writer_rows([fast], [5.0], base)[0]
    assert rate.passed is False
    assert "3 non-2xx or socket errors" in rate.note
