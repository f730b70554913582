"""The cyclic garbage collector's settings for a served process.

Called by the process's entry point once everything is started, never by
an in-process test's service: the settings are the whole process's."""

from __future__ import annotations

import gc

# The young generation: big enough that the objects of the requests in
# flight mostly die by reference counting before a collection walks them
# (the default 700 collects every few requests under load).
YOUNG = 5000


def tune() -> None:
    """Start-up's objects (modules, the apps, protobuf descriptors, the
    stores) live as long as the process: frozen, no full collection walks
    them again (each took ~40 ms under P1's load, ~1.5 ms frozen). With the
    larger young generation the collector's time under P1 went from 7 to 13
    us an event to ~0.1 (docs/performance.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, *gc.get_threshold()[1:])
