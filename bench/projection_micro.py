"""The projection step's CPU an event, by batch size, with and without the
hand-off, in one run: `.venv/bin/python -m bench.projection_micro`.

Webhooks of the kit's mix (P1's shape: 10,000 customers) are appended into
a fresh SQLite store the way `service run` does (group commits of 32, through
the hand-off), then the worker's loop (`read` then `Projector.apply`) is
timed over them in batches of each size: once reading everything back from
the store (the hand-off emptied first), once taking the hand-off. Rounds
interleave every (size, way) pair; the best round of each is printed, as
process CPU (user + system, so SQLite's commits count) per event, split
into the read and the apply. `--profile SIZE` prints where `apply` spends
its time at that batch size instead.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from projections.events import RecordedEvent
from projections.projector import EventSource
from projections.worker import ProjectionWorker
from service.bootstrap import Container, build
from service.config import Settings
from service.handoff import HandOff
from service.ingest import Envelope, parse_envelope
from testkit.traffic import webhooks

COMMIT = 32  # webhooks a group commit carried on average under P1's load
WAYS = ("store", "hand-off")


def envelopes(customers: int) -> Iterator[Envelope]:
    for w in webhooks(10_000_000, customers, tag="micro", spread=customers):
        yield parse_envelope(w.body, w.type_name)


class Timed:
    """An EventSource that counts the CPU its reads take."""

    def __init__(self, source: EventSource) -> None:
        self.source = source
        self.cpu = 0.0

    def read(self, after: int, limit: int) -> list[RecordedEvent]:
        t = time.process_time()
        try:
            return self.source.read(after, limit)
        finally:
            self.cpu += time.process_time() - t

    def head(self) -> int:
        return self.source.head()


class Run:
    def __init__(self, container: Container, customers: int) -> None:
        self.c = container
        self.handoff = HandOff(container.events, limit=1_000_000, max_age=3600)
        self.handoff.follow(True)
        self.append = self.handoff.recording(container.events.append)
        self.stream = envelopes(customers)
        self.worker = ProjectionWorker(container.events, container.models)

    def store(self, n: int, *, hand_off: bool) -> None:
        batch = [next(self.stream) for _ in range(n)]
        for i in range(0, n, COMMIT):
            self.append(batch[i : i + COMMIT])
        if not hand_off:
            self.handoff.clear()

    def project(
        self,
        size: int,
        n: int,
        *,
        hand_off: bool,
        profiler: cProfile.Profile | None = None,
    ) -> tuple[float, float]:
        """(CPU seconds in all, of which reading) of the worker's wake-ups
        (`run_once`) over `n` events, `size` stored (one commit) before each."""
        source = Timed(self.handoff if hand_off else self.c.events)
        self.worker.source = source
        cpu = 0.0
        for _ in range(n // size):
            self.store(size, hand_off=hand_off)
            start = time.process_time()
            if profiler is not None:
                profiler.enable()
            self.worker.run_once()
            if profiler is not None:
                profiler.disable()
            cpu += time.process_time() - start
        return cpu, source.cpu


def events_for(size: int, per_size: int) -> int:
    # Batches of one pay a commit each: fewer of them keep the run short.
    return max(size * 25, per_size // 4) if size < 8 else max(per_size, size * 8)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.projection_micro")
    ap.add_argument("--sizes", default="1,8,32,200")
    ap.add_argument("--events", type=int, default=1600, help="events a measure")
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", type=int, default=0, metavar="SIZE")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_environ(
            {"DATA_DIR": str(Path(tmp))}, require_secret=False
        )
        container = build(settings)
        try:
            run = Run(container, args.customers)
            # Every customer exists first, as in a store that has been running.
            run.project(500, args.customers, hand_off=False)
            if args.profile:
                profile(run, args.profile, args.events)
                return
            measure(run, sizes, args.events, args.rounds)
        finally:
            container.close()


def measure(run: Run, sizes: list[int], per_size: int, rounds: int) -> None:
    best: dict[tuple[int, str], tuple[float, float]] = {}
    for _ in range(rounds):
        for size in sizes:
            for way in WAYS:
                hand_off = way == "hand-off"
                n = events_for(size, per_size) // size * size
                cpu, reading = run.project(size, n, hand_off=hand_off)
                figure = (cpu / n * 1e6, reading / n * 1e6)
                if (size, way) not in best or figure[0] < best[size, way][0]:
                    best[size, way] = figure
    print(f"projection step, CPU us an event, best of {rounds} interleaved rounds")
    print("| batch | way | in all | read | apply | hand-off / store |")
    print("|---|---|---|---|---|---|")
    for size in sizes:
        for way in WAYS:
            total, reading = best[size, way]
            ratio = total / best[size, "store"][0]
            print(
                f"| {size} | {way} | {total:.1f} | {reading:.1f} | "
                f"{total - reading:.1f} | {ratio:.2f}x |"
            )


def profile(run: Run, size: int, n: int) -> None:
    p = cProfile.Profile(time.process_time)
    run.project(size, n, hand_off=True, profiler=p)
    pstats.Stats(p).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
