"""Under load the worker lingers: after a wake-up that applied events the
next starts no sooner than `linger` after it began, so commits that keep
coming are applied together; after a quiet spell an event is applied at
once, and stopping does not wait for the linger. The linger comes from
PROJECTION_LINGER_MS, else from the backend."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

from projections.worker import ProjectionWorker
from service.backends.postgres.backend import PostgresBackend
from service.backends.sqlite.backend import SqliteBackend
from service.bootstrap import worker_linger
from service.config import ConfigError, Settings


class Recorder:
    """A run_once that applies one event a call and records when it ran."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.called = threading.Event()

    def __call__(self) -> int:
        self.calls.append(time.monotonic())
        self.called.set()
        return 1


def started(linger: float) -> tuple[ProjectionWorker, Recorder]:
    worker = ProjectionWorker(
        source=None,  # type: ignore[arg-type]
        models=None,  # type: ignore[arg-type]
        poll_interval=5.0,  # only wake-ups start a run here
        linger=linger,
    )
    recorder = Recorder()
    worker.run_once = recorder  # type: ignore[method-assign]
    worker.start()
    assert recorder.called.wait(5)  # the first run, at start
    return worker, recorder


def under_load(linger: float, every: float, settle: float) -> list[float]:
    """When run_once ran while commits kept coming for 0.6 s, one every
    `every` seconds, and `settle` seconds after."""
    worker, runs = started(linger)
    try:
        end = time.monotonic() + 0.6
        while time.monotonic() < end:
            worker.wake()
            time.sleep(every)
        time.sleep(settle)
    finally:
        worker.stop()
    return runs.calls


def test_under_load_wake_ups_are_a_linger_apart() -> None:
    calls = under_load(linger=0.1, every=0.002, settle=0.15)  # ~300 commits
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert len(calls) <= 9, calls  # 0.6 s of commits / 0.1 s, + edges
    assert gaps and min(gaps) >= 0.095, gaps


def test_without_a_linger_every_commit_wakes_it() -> None:
    calls = under_load(linger=0.0, every=0.01, settle=0.05)  # ~60 commits
    # A run per commit, give or take a slow scheduler: far more than
    # the linger's few.
    assert len(calls) >= 20, len(calls)


def test_after_a_quiet_spell_an_event_is_applied_at_once() -> None:
    worker, runs = started(linger=0.3)
    try:
        time.sleep(0.4)  # quiet for longer than the linger
        runs.called.clear()
        woken = time.monotonic()
        worker.wake()
        assert runs.called.wait(5)
        assert runs.calls[-1] - woken < 0.1
    finally:
        worker.stop()


def test_stopping_does_not_wait_for_the_linger() -> None:
    worker, runs = started(linger=30.0)
    worker.wake()
    time.sleep(0.05)
    assert len(runs.calls) == 1  # lingering: the wake-up waits
    t = time.monotonic()
    worker.stop()
    assert time.monotonic() - t < 2
    assert worker.status().running is False


def settings(**env: str) -> Settings:
    return Settings.from_environ(env, require_secret=False)


def test_the_linger_is_the_setting_else_the_backends() -> None:
    pg = PostgresBackend("postgresql://u@h/db")
    lite = SqliteBackend(Path("var"))
    assert worker_linger(settings(), pg) == 0.02
    assert worker_linger(settings(), lite) == 0.0
    assert worker_linger(settings(PROJECTION_LINGER_MS="0"), pg) == 0.0
    assert worker_linger(settings(PROJECTION_LINGER_MS="50"), lite) == 0.05
    with pytest.raises(ConfigError, match="PROJECTION_LINGER_MS must be 0 or more"):
        settings(PROJECTION_LINGER_MS="-1")
    with pytest.raises(ConfigError, match="at most 1000 milliseconds, got 60000"):
        settings(PROJECTION_LINGER_MS="60000")
