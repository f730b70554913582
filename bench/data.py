"""Benchmark data: the kit's realistic webhooks, pre-signed in files for the
load generators, or appended straight into a store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from testkit.traffic import Webhook, webhooks

if TYPE_CHECKING:
    from service.eventstore import EventStore

SECRET = "bench-secret"


def write_requests(path: Path, hooks: Iterator[Webhook]) -> int:
    """One pre-signed request a line: signature TAB event name TAB body."""
    n = 0
    with path.open("w") as f:
        for w in hooks:
            f.write(f"{w.signature(SECRET)}\t{w.type_name}\t{w.body.decode()}\n")
            n += 1
    return n


def read_requests(path: Path) -> list[tuple[str, str, bytes]]:
    out = []
    with path.open() as f:
        for line in f:
            sig, name, body = line.rstrip("\n").split("\t", 2)
            out.append((sig, name, body.encode()))
    return out


def populate(
    data_dir: Path,
    count: int,
    customers: int,
    *,
    tag: str,
    batch: int = 1000,
    progress: bool = False,
) -> int:
    """Append `count` events straight into DATA_DIR/events.sqlite; see fill."""
    from service.backends.sqlite.store import open_sqlite

    store, _quarantine, factory = open_sqlite(data_dir)
    try:
        return fill(store, count, customers, tag=tag, batch=batch, progress=progress)
    finally:
        factory.close()


def fill(
    store: EventStore,
    count: int,
    customers: int,
    *,
    tag: str,
    batch: int = 1000,
    progress: bool = False,
) -> int:
    """Append `count` events through the EventStore API (no HTTP), in
    batches; returns the head position. The customers' creations are spread
    over the whole stream."""
    from service.ingest import parse_envelope

    chunk = []
    done = 0
    for w in webhooks(count, customers, tag=tag, spread=count):
        chunk.append(parse_envelope(w.body, w.type_name))
        if len(chunk) == batch:
            store.append(chunk)
            done += len(chunk)
            chunk = []
            if progress and done % 100_000 == 0:
                print(f"    appended {done:,}/{count:,}", flush=True)
    if chunk:
        store.append(chunk)
    return store.head()
