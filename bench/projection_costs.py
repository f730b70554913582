"""What each part of an applied batch costs the worker, by leaving it out:
`.venv/bin/python -m bench.projection_costs [--rounds 3] [--events 6400]`.

The same store and wake-ups as `bench.projection_micro` (10,000 customers,
all created first; commits of 32 webhooks through the hand-off, the worker
woken after each), timed once as the service runs them and once each
without one of: the batch's history rows, its ledger rows, its customer
rows' upsert (their states and answers are still made), the customers'
answers (their rows are still written). Rounds interleave the variants;
the best round of each is printed as process CPU an event, with what
leaving the part out saved. A bench-only measure: the service never
leaves anything out.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.projection_micro import Run
from projections.stores.answers import NO_ANSWERS
from projections.stores.rows import Batch
from projections.stores.writer import GenerationWriter
from service.bootstrap import build
from service.config import Settings

# Variant -> (the Batch field its writes drop, "" for none; answers made).
DROPPED = {
    "as the service runs": ("", True),
    "without history rows": ("history", True),
    "without ledger rows": ("ledger", True),
    "without the customers' upsert": ("customers", True),
    "without the answers": ("", False),
}
BASE = "as the service runs"


@contextmanager
def dropping(field: str) -> Iterator[None]:
    """GenerationWriter.write, with `field` of every batch emptied first."""
    write = GenerationWriter.write

    def write_without(self: GenerationWriter, batch: Batch, **kw: Any) -> None:
        setattr(batch, field, [])
        write(self, batch, **kw)

    if field:
        GenerationWriter.write = write_without  # type: ignore[method-assign]
    try:
        yield
    finally:
        GenerationWriter.write = write  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.projection_costs")
    ap.add_argument("--events", type=int, default=6400, help="events a measure")
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    n = args.events // 32 * 32
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_environ({"DATA_DIR": tmp}, require_secret=False)
        container = build(settings)
        try:
            run = Run(container, args.customers)
            run.project(min(500, args.customers), args.customers, hand_off=False)
            projector = run.worker._projector
            assert projector is not None  # made by the first wake-up
            answers = projector.answers
            best: dict[str, float] = {}
            for _ in range(args.rounds):
                for name, (field, answered) in DROPPED.items():
                    projector.answers = answers if answered else NO_ANSWERS
                    with dropping(field):
                        cpu, _ = run.project(32, n, hand_off=True)
                    us = cpu / n * 1e6
                    best[name] = min(best.get(name, us), us)
            projector.answers = answers
        finally:
            container.close()
    base = best[BASE]
    print(f"projection step at commits of 32, CPU us an event, best of {args.rounds}")
    print("| batch | in all | saved |")
    print("|---|---|---|")
    for name, us in best.items():
        saved = "" if name == BASE else f"{base - us:.1f}"
        print(f"| {name} | {us:.1f} | {saved} |")


if __name__ == "__main__":
    main()
