"""Rebuilding every read model from the event store, online.

A rebuild folds every stored event into a fresh generation of tables and
then switches readers to it in one transaction; until then they read the
old one, and the live worker carries on in the new one afterwards.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from projections.projector import EventSource, RebuildProjector
from projections.stores.sql import SqlReadModels


@dataclass(frozen=True)
class RebuildProgress:
    generation: int
    done: int  # position reached
    target: int  # head when the rebuild started
    events_per_second: float
    started_at: float  # monotonic
    started_wall: float  # epoch seconds, for display
    finished: bool


def rebuild(
    source: EventSource,
    models: SqlReadModels,
    *,
    batch_size: int = 20_000,
    keep_states: int = 100_000,
    on_progress: Callable[[RebuildProgress], None] | None = None,
    stop: threading.Event | None = None,
) -> RebuildProgress:
    """Fold every stored event into a fresh generation, then switch readers to
    it and drop the old one. Reads are served from the old generation until
    the switch; the live worker notices the switch and carries on from the new
    generation's own position, so nothing is skipped or applied twice."""
    g = models.begin_rebuild()
    # States stay decoded in memory (bounded) and are written once; see
    # RebuildProjector and docs/performance.md.
    # A source that can make answers too (a reader process, idle once it has
    # read everything) makes some of the final flush's.
    projector = RebuildProjector(
        models,
        g,
        keep_states=keep_states,
        answer_many=getattr(source, "answer_many", None),
    )
    target = source.head()
    started = time.monotonic()
    started_wall = time.time()
    applied = 0

    def progress(finished: bool) -> RebuildProgress:
        elapsed = max(time.monotonic() - started, 1e-9)
        return RebuildProgress(
            g,
            projector.position,
            target,
            applied / elapsed,
            started,
            started_wall,
            finished,
        )

    with cyclic_gc_paused():
        while True:
            if stop is not None and stop.is_set():
                models.abandon_rebuild()
                raise InterruptedError("rebuild stopped")
            events = source.read(projector.position, batch_size)
            if not events:
                projector.finish()  # before readers can see the generation
                break
            projector.apply(events)
            applied += len(events)
            if on_progress is not None:
                on_progress(progress(False))
    old = models.switch_to(g)
    models.drop_generation(old)
    done = progress(True)
    if on_progress is not None:
        on_progress(done)
    return done


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Switch Python's cycle collector off for the duration.

    A rebuild keeps every customer's state alive and allocates millions of
    short-lived objects, so the collector's full passes re-scan the growing
    heap again and again: 40 % of a 1M-event rebuild (docs/performance.md).
    Decoding and folding make no reference cycles (a test pins that), so
    reference counting frees everything anyway; whatever cycles the rest of
    the process makes meanwhile are collected when the collector is back.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
