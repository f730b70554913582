"""The PostgreSQL worker's CPU an event, by batch size, split into its steps
and PostgreSQL's own share, in one run:
`.venv/bin/python -m bench.pg_projection_micro [--pg-url URL]`.

The sibling of bench/projection_micro.py for the production deployment:
webhooks of the kit's mix are appended into a fresh schema in group commits
of 32 (the ingress's shape), then the worker's wake-up is timed over them
in batches of each size, as `python -m service worker` runs it: the lease's
check, then `run_once` (`read`, then the generation and `Projector.apply`,
counted together as "apply"). Each step's
process CPU is counted apart, and PostgreSQL's CPU over the wake-ups too,
since every statement costs the server a parse or a bind and a round trip:
all its processes (psutil; other users' work counts too) and, apart, only
the backends serving this process's connections. Rounds interleave the sizes; the best
round of each size is printed, in us an event.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from bench.pgdb import (
    default_url,
    fresh_schema,
    master_key_file,
    own_backends_cpu,
    postgres_cpu,
)
from bench.projection_micro import COMMIT, envelopes, events_for
from projections.events import RecordedEvent
from projections.projector import EventSource
from projections.worker import ProjectionWorker
from service.backends.postgres.lease import PostgresLease
from service.bootstrap import Container, build
from service.config import Settings
from service.ingest import Envelope

T = TypeVar("T")
STEPS = ("lease", "read", "apply")


class Steps:
    """CPU seconds by step, of this process."""

    def __init__(self) -> None:
        self.cpu = dict.fromkeys(STEPS, 0.0)

    def timed(self, step: str, call: Callable[[], T]) -> T:
        t = time.process_time()
        try:
            return call()
        finally:
            self.cpu[step] += time.process_time() - t


class TimedSource:
    def __init__(self, source: EventSource, steps: Steps) -> None:
        self.source, self.steps = source, steps

    def read(self, after: int, limit: int) -> list[RecordedEvent]:
        return self.steps.timed("read", lambda: self.source.read(after, limit))

    def head(self) -> int:
        return self.source.head()


def run_size(
    c: Container, lease: PostgresLease, stream: Iterator[Envelope], size: int, n: int
) -> tuple[dict[str, float], float, float]:
    steps = Steps()
    worker = ProjectionWorker(TimedSource(c.events, steps), c.models, lease=lease)
    applied = 0
    pg = own = 0.0
    for _ in range(n // size):
        batch = [next(stream) for _ in range(size)]
        for i in range(0, size, COMMIT):
            c.events.append(batch[i : i + COMMIT])
        pg_start, own_start = postgres_cpu(), own_backends_cpu()
        start = time.process_time()
        steps.timed("lease", lease.acquire)
        applied += worker.run_once()
        steps.cpu["apply"] += time.process_time() - start
        pg += postgres_cpu() - pg_start
        own += own_backends_cpu() - own_start
    if applied != n:  # every webhook is new: each must be stored and applied
        raise RuntimeError(f"applied {applied} of {n} events")
    # Whatever run_once did besides reading: the generation, the apply.
    steps.cpu["apply"] -= steps.cpu["lease"] + steps.cpu["read"]
    return steps.cpu, pg, own


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.pg_projection_micro")
    ap.add_argument("--pg-url", default=default_url())
    ap.add_argument("--sizes", default="1,8,32,200")
    ap.add_argument("--events", type=int, default=800, help="events a measure")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    with fresh_schema(args.pg_url, "pgproj") as url:
        settings = Settings.from_environ(
            {"DATABASE_URL": url, "MASTER_KEY_FILE": str(master_key_file())},
            require_secret=False,
        )
        c = build(settings)
        lease = PostgresLease(url)
        stream = envelopes(10_000)
        try:
            # Customers exist first, as in a store that has been running.
            run_size(c, lease, stream, 500, 2000)
            best: dict[int, tuple[dict[str, float], float, float, float]] = {}
            for _ in range(args.rounds):
                for size in sizes:
                    n = events_for(size, args.events) // size * size
                    cpu, pg, own = run_size(c, lease, stream, size, n)
                    total = sum(cpu.values()) / n * 1e6
                    if size not in best or total < best[size][3]:
                        best[size] = (
                            {k: v / n * 1e6 for k, v in cpu.items()},
                            pg / n * 1e6,
                            own / n * 1e6,
                            total,
                        )
        finally:
            lease.release()
            c.close()
    print(f"PostgreSQL worker, CPU us an event, best of {args.rounds} rounds")
    print(
        "| batch | worker | lease | read | apply | PostgreSQL | both "
        "| its backends | worker + its backends |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        cpu, pg, own, total = best[size]
        print(
            f"| {size} | {total:.1f} | {cpu['lease']:.1f} | {cpu['read']:.1f} | "
            f"{cpu['apply']:.1f} | {pg:.1f} | {total + pg:.1f} | {own:.1f} "
            f"| {total + own:.1f} |"
        )


if __name__ == "__main__":
    main()
