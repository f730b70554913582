"""The catch-up worker: follows the event store from its committed position.

It pulls (the library cannot push on SQLite) and sleeps until woken by the
ingress, by a LISTEN/NOTIFY listener, or by its poll interval. Errors from
the stores (a database outage) are logged and retried with back-off; the
position in the store is the truth, so a retry never applies twice.

Under load it can linger: after a wake-up that applied events, the next
starts no sooner than `linger` seconds after it began, so one wake-up
carries several commits' events. A wake-up costs its round trips whatever
its size (on PostgreSQL most of the worker's cost at a commit's size), and
the linger bounds the delay it adds; an event after a quiet spell is
applied at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import structlog

from projections.events import RecordedEvent
from projections.lease import Lease, SoleWorker
from projections.projector import EventSource, Projector
from projections.stores.sql import SqlReadModels

log = structlog.get_logger(__name__)

# What a batch is applied inside, e.g. a tracing span (the service's).
BatchScope = Callable[[Sequence[RecordedEvent]], AbstractContextManager[object]]


@dataclass(frozen=True)
class WorkerStatus:
    applied_position: int
    generation: int
    running: bool
    leader: bool
    standing_by: bool  # another worker holds the lease; this one waits
    healthy: bool
    last_error: str | None

    @property
    def ready(self) -> bool:
        """Running and past its first try for the lease: applying, or
        standing by for the one that applies."""
        return self.running and (self.leader or self.standing_by)


class ProjectionWorker:
    def __init__(
        self,
        source: EventSource,
        models: SqlReadModels,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        on_applied: Callable[[int], None] | None = None,
        lease: Lease | None = None,
        batch_scope: BatchScope | None = None,
        on_lease: Callable[[bool], None] | None = None,
        linger: float = 0.0,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.source = source
        self.models = models
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.on_applied = on_applied
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._projector: Projector | None = None
        self._last_error: str | None = None
        self.lease = lease or SoleWorker()
        self.batch_scope = batch_scope
        self._leader = False
        self._standing_by = False
        self.on_lease = on_lease
        self.linger = linger
        self.on_batch = on_batch  # events of each batch applied

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name="projection-worker", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.lease.release()

    def wake(self) -> None:
        """New events are stored: look now rather than at the next poll."""
        self._wake.set()

    def status(self) -> WorkerStatus:
        p = self._projector
        return WorkerStatus(
            applied_position=p.position if p else 0,
            generation=p.generation if p else 0,
            running=self._thread is not None and self._thread.is_alive(),
            leader=self._leader,
            standing_by=self._standing_by,
            healthy=self._last_error is None,
            last_error=self._last_error,
        )

    def run_once(self) -> int:
        """Apply what is stored now; returns how many events were applied.
        (The thread's loop body, also used by tests and the CLI.)"""
        g = self.models.current_generation(refresh=True)
        if self._projector is None or self._projector.generation != g:
            # First run, or a rebuild switched generations under us.
            self._projector = Projector(self.models, g)
            self._notify(self._projector.position)
        applied = 0
        while not self._stop.is_set():
            events = self.source.read(self._projector.position, self.batch_size)
            if not events:
                break
            if self.batch_scope is None:
                self._projector.apply(events)
            else:
                with self.batch_scope(events):
                    self._projector.apply(events)
            applied += len(events)
            self._notify(self._projector.position)
            if self.on_batch is not None:
                self.on_batch(len(events))
            if len(events) < self.batch_size:
                # The store held no more a moment ago: asking again costs
                # a read per wake-up, and whatever commits since wakes us.
                break
        return applied

    def _notify(self, position: int) -> None:
        if self.on_applied is not None:
            self.on_applied(position)

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            self._wake.clear()
            try:
                held = self.lease.acquire()
            except Exception as e:
                # The lease's database is down: neither applying nor a
                # known standby until it answers again.
                self._lease_lost(e)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if not held:
                if self._leader:
                    log.warning("lost the worker lease; standing by")
                elif not self._standing_by:
                    log.info("standing by: another worker holds the lease")
                self._set_lease(leader=False, standing_by=True)
                self._projector = None
                self._stop.wait(self.poll_interval)  # a standby: try again soon
                continue
            if not self._leader:
                log.info("holding the worker lease; applying")
                self._set_lease(leader=True, standing_by=False)
            began = time.monotonic()
            try:
                applied = self.run_once()
            except Exception as e:
                self._last_error = f"{type(e).__name__}: {e}"
                self._projector = None  # re-read the committed position
                log.warning(
                    "projection worker error, retrying",
                    error=_first_line(e),
                    retry_in_s=backoff,
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self._last_error = None
            backoff = 0.1
            if applied and self.linger > 0:
                # Commits that arrive meanwhile wait for one wake-up together.
                self._stop.wait(max(0.0, began + self.linger - time.monotonic()))
            self._wake.wait(self.poll_interval)

    def _lease_lost(self, error: Exception) -> None:
        if self._leader or self._standing_by:
            log.warning(
                "cannot reach the worker lease; retrying", error=_first_line(error)
            )
        self._last_error = f"{type(error).__name__}: {error}"
        self._projector = None
        self._set_lease(leader=False, standing_by=False)

    def _set_lease(self, *, leader: bool, standing_by: bool) -> None:
        changed = leader != self._leader
        self._leader, self._standing_by = leader, standing_by
        if changed and self.on_lease is not None:
            self.on_lease(leader)


def _first_line(error: Exception) -> str:
    """The error's type and first line: PostgreSQL quotes values (a key, a
    parameter) only on the lines after it (DETAIL, CONTEXT)."""
    return f"{type(error).__name__}: {str(error).partition(chr(10))[0][:200]}"
