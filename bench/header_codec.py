"""`python -m bench.header_codec`: encode + decode of the stored header, µs
an event, v1 (JSON array, isoformat) against v2 (struct-packed), in one run.

A micro-measure of one step of the append and the replay, not a target: the
targets are P1 and P3, measured end to end."""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from service.storedheader import StoredHeader, decode_header, encode_header, encode_v1

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def headers(n: int, traced: bool) -> list[StoredHeader]:
    start = datetime(2026, 3, 8, 12, tzinfo=UTC)
    return [
        StoredHeader(
            str(uuid.uuid4()),
            str(uuid.uuid4()),
            "Balance changed",
            start + timedelta(seconds=i, microseconds=i * 7),
            start + timedelta(seconds=i + 1, microseconds=i * 11),
            uuid.uuid4().hex,
            TRACEPARENT if traced else "",
        )
        for i in range(n)
    ]


def _round_trip_v1(hs: list[StoredHeader]) -> None:
    for h in hs:
        decode_header(encode_v1(h) + b"\n")


def _round_trip_v2(hs: list[StoredHeader]) -> None:
    for h in hs:
        decode_header(encode_header(h))


def _seconds(fn: Callable[[list[StoredHeader]], None], hs: list[StoredHeader]) -> float:
    started = time.perf_counter()
    fn(hs)
    return time.perf_counter() - started


def measure(events: int, rounds: int) -> dict[str, float]:
    """µs an event for each case, best of `rounds` interleaved rounds (the
    best is the least disturbed; interleaving shares any disturbance)."""
    plain, traced = headers(events, False), headers(events, True)
    cases = {
        "v1": (_round_trip_v1, plain),
        "v2": (_round_trip_v2, plain),
        "v2 with traceparent": (_round_trip_v2, traced),
    }
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(rounds):
        for name, (fn, hs) in cases.items():
            best[name] = min(best[name], _seconds(fn, hs))
    return {name: seconds / events * 1e6 for name, seconds in best.items()}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m bench.header_codec", description=__doc__
    )
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args(argv)
    us = measure(args.events, args.rounds)
    print("stored header, encode + decode, µs an event:")
    for name, value in us.items():
        print(f"  {name:<20} {value:6.2f}")
    print(f"  v1 / v2: {us['v1'] / us['v2']:.2f}x")


if __name__ == "__main__":
    main()
