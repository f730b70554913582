"""CPU per event of EventStore.append, and where it goes.

    python -m bench.append_micro [--pg URL] [--batch 32] [--ladder]

Appends the kit's realistic webhooks (parsed as the ingress parses them) in
batches to a fresh store (SQLite in a temporary directory, or a fresh schema
of PostgreSQL with --pg), after a warm-up that gives most customers a key.
Prints this process's CPU microseconds per event (best of --rounds; the
machine is shared, so CPU time, not wall time), and with --pg also the
PostgreSQL server's (all its processes: other users' work shows too).

--ladder also times each step of an append on its own, over the same kind
of batches: the id hashes, the position look-up (the old append did it
before every insert), the customers' keys (from the writers' cache, and as
a fresh read, which the old append did every batch), the encoding, the
insert rolled back, the insert committed, and the insert committed with
the batch's ids in the primary key's order (bench-only: each new id sorts
after every stored one, so the id index grows at its right edge instead of
on a random page per event; what exactly-once's random keys cost). Each
step runs on its own ids, so none is measured on rows another step stored.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import pgdb
from service.eventstore import EventStore
from service.ingest import Envelope, parse_envelope
from service.storedevents import originator_id, sealed
from testkit.keys import master_key
from testkit.traffic import webhooks

CUSTOMERS = 2_000
WARM_UP = 4_000  # events before measuring: most customers have a key
# Ids in key order: above every uuid5 but a 1-in-4-billion few, and rising.
_ORDERED_BASE = 0xFFFFFFFF << 96


def envelopes(count: int, offset: int) -> list[Envelope]:
    hooks = webhooks(
        count, CUSTOMERS, tag="micro", offset=offset, spread=WARM_UP + count
    )
    return [parse_envelope(w.body, w.type_name) for w in hooks]


def batches(envs: list[Envelope], size: int) -> list[list[Envelope]]:
    return [envs[i : i + size] for i in range(0, len(envs), size)]


@contextlib.contextmanager
def opened(pg: str | None) -> Iterator[EventStore]:
    if pg is None:
        from service.backends.sqlite.store import open_sqlite

        with tempfile.TemporaryDirectory() as tmp:
            store, _quarantine, factory = open_sqlite(Path(tmp))
            try:
                yield store
            finally:
                factory.close()
        return
    from service.backends.postgres.store import open_postgres

    with pgdb.fresh_schema(pg, "micro") as url:
        store, _quarantine, factory = open_postgres(url, master_key())
        try:
            yield store
        finally:
            factory.close()


def cpu_of(work: Callable[[], Any], server: bool) -> tuple[float, float]:
    """(this process's, PostgreSQL's) CPU seconds spent by `work`."""
    pg0 = pgdb.postgres_cpu() if server else 0.0
    t0 = time.process_time()
    work()
    t1 = time.process_time()
    pg1 = pgdb.postgres_cpu() if server else 0.0
    return t1 - t0, pg1 - pg0


def newest_of(batch: list[Envelope]) -> dict[str, datetime]:
    newest: dict[str, datetime] = {}
    for env in batch:
        when = newest.get(env.customer_id)
        if when is None or env.created_at > when:
            newest[env.customer_id] = env.created_at
    return newest


class Ladder:
    """Each step of an append on its own, over pre-built batches."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.keyring = store.keyring
        self._ordered = itertools.count(1)

    def uuid5(self, bs: list[list[Envelope]]) -> None:
        for b in bs:
            [originator_id(e.id) for e in b]

    def lookup(self, bs: list[list[Envelope]]) -> None:
        for b in bs:
            self.store.index.positions([originator_id(e.id) for e in b])

    def keys_cached(self, bs: list[list[Envelope]]) -> None:
        for b in bs:
            self.keyring.for_batch(newest_of(b))

    def keys_read(self, bs: list[list[Envelope]]) -> None:
        for b in bs:
            self.keyring.for_batch(newest_of(b), fresh=True)

    def prepared(self, b: list[Envelope]) -> tuple[list[Any], Any, Any]:
        keys, new = self.keyring.for_batch(newest_of(b))
        now = datetime.now(UTC)
        stored = [sealed(e, now, keys[e.customer_id], e.traceparent)[1] for e in b]
        used = {c: k.key_id for c, k in keys.items() if k.key_id is not None}

        def verify(c: Any) -> None:
            self.keyring.store_new(c, new)
            self.keyring.verify(c, used)

        return stored, verify, new

    def encode(self, bs: list[list[Envelope]]) -> None:
        now = datetime.now(UTC)
        keyed = [(b, self.keyring.for_batch(newest_of(b))[0]) for b in bs]
        t0 = time.process_time()
        for b, keys in keyed:
            [sealed(e, now, keys[e.customer_id], e.traceparent)[1] for e in b]
        self.spent = time.process_time() - t0

    def insert_rolled_back(self, bs: list[list[Envelope]]) -> None:
        recorder: Any = self.store.recorder
        self.spent = 0.0
        for b in bs:
            stored, verify, _new = self.prepared(b)
            t0 = time.process_time()
            with recorder.datastore.transaction(commit=False) as c:
                if hasattr(recorder, "before_insert"):  # PostgreSQL
                    recorder.before_insert(c, {"verify": verify})
                    recorder.insert_rows(c, stored)
                else:
                    recorder.insert_rows(c, stored, {"verify": verify})
            self.spent += time.process_time() - t0

    def insert_committed(self, bs: list[list[Envelope]], ordered: bool = False) -> None:
        self.spent = 0.0
        for b in bs:
            stored, verify, new = self.prepared(b)
            if ordered:
                stored = [
                    dataclasses.replace(
                        s,
                        originator_id=uuid.UUID(
                            int=_ORDERED_BASE | next(self._ordered)
                        ),
                    )
                    for s in stored
                ]
            t0 = time.process_time()
            self.store.recorder.insert_events(stored, verify=verify)
            self.spent += time.process_time() - t0
            self.keyring.written(new)

    def insert_committed_ids_in_key_order(self, bs: list[list[Envelope]]) -> None:
        self.insert_committed(bs, ordered=True)


STEPS = (
    "uuid5",
    "lookup",
    "keys_read",
    "keys_cached",
    "encode",
    "insert_rolled_back",
    "insert_committed",
    "insert_committed_ids_in_key_order",
)
# Steps that prepare their input inside the call and time only the step.
SELF_TIMED = {
    "encode",
    "insert_rolled_back",
    "insert_committed",
    "insert_committed_ids_in_key_order",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.append_micro")
    parser.add_argument("--pg", nargs="?", const=pgdb.default_url(), default=None)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--events", type=int, default=8_000, help="a round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ladder", action="store_true")
    parser.add_argument("--label", default="")
    args = parser.parse_args(argv)
    server = args.pg is not None
    n = args.events
    results: dict[str, list[tuple[float, float]]] = {}
    with opened(args.pg) as store:
        for b in batches(envelopes(WARM_UP, 0), args.batch):
            store.append(b)
        offset = WARM_UP
        ladder = Ladder(store)
        for _ in range(args.rounds):
            bs = batches(envelopes(n, offset), args.batch)
            offset += n
            spent = cpu_of(lambda bs=bs: [store.append(b) for b in bs], server)
            results.setdefault("append", []).append(spent)
            if not args.ladder:
                continue
            for step in STEPS:
                bs = batches(envelopes(n, offset), args.batch)
                offset += n
                spent = cpu_of(lambda s=step, bs=bs: getattr(ladder, s)(bs), server)
                if step in SELF_TIMED:
                    spent = (ladder.spent, spent[1])
                results.setdefault(step, []).append(spent)
    where = "postgres" if server else "sqlite"
    print(f"# {args.label or 'append'} on {where}, batch {args.batch}, "
          f"{n} events x {args.rounds} rounds: us/event best (median)")  # fmt: skip
    for name, spent in results.items():
        ours = sorted(1e6 * c / n for c, _ in spent)
        line = f"{name:34s} {ours[0]:8.1f} ({statistics.median(ours):6.1f})"
        if server:
            theirs = sorted(1e6 * s / n for _, s in spent)
            line += f"   server {theirs[0]:7.1f} ({statistics.median(theirs):6.1f})"
        print(line, flush=True)


if __name__ == "__main__":
    main()
