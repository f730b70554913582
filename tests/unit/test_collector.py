"""A served process's collector settings: start-up's objects frozen, and a
young generation large enough for the requests in flight. The process's
settings are restored afterwards, for the tests that follow."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from service import collector


@pytest.fixture
def restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored")
def test_start_up_objects_are_frozen_and_the_young_generation_is_larger() -> None:
    kept = [{"start-up": i} for i in range(1000)]  # alive at start-up
    collector.tune()
    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_threshold()[0] == collector.YOUNG
    # Garbage made afterwards is still collected.
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1
