"""The health watch: readiness checks, the lag and count gauges, and the
hourly purge of the quarantine, once a second on the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from projections.stores.sql import SqlReadModels
from projections.worker import ProjectionWorker
from service import logs
from service.eventstore import EventStore, StoreUnavailable
from service.metrics import Metrics
from service.positions import PositionWatch
from service.quarantine import Quarantine

if TYPE_CHECKING:
    from service.rpc.server import Health

log = logs.get(__name__)
HEALTH_INTERVAL = 1.0
PURGE_INTERVAL = 3600.0


@dataclass
class HealthWatch:
    events: EventStore
    models: SqlReadModels
    quarantine: Quarantine
    metrics: Metrics
    head: PositionWatch
    applied: PositionWatch
    worker: ProjectionWorker | None  # this process's, if it runs one
    follow_events: bool  # the head is pushed (LISTEN or our own commits)
    retention_days: int
    grpc_health: Health | None = None
    # An ingress that sends to the store's writer process: whether it can.
    writer_link: Callable[[], bool] | None = None
    interval: float = HEALTH_INTERVAL

    def __post_init__(self) -> None:
        self._purged_at: float | None = None

    async def ready(self) -> dict[str, bool]:
        try:
            await asyncio.to_thread(self.events.ping)
            checks = {"store": True}
        except StoreUnavailable:
            checks = {"store": False}
        # Reachable but out of space refuses every webhook: not ready either.
        checks["store_space"] = await asyncio.to_thread(self.events.space.writable)
        if self.writer_link is not None:
            checks["writer"] = self.writer_link()
        if self.worker is not None:
            # Applying, or standing by for the worker that applies: both are
            # what a healthy worker process does.
            checks["projections"] = self.worker.status().ready
        for check, ok in checks.items():
            self.metrics.ready.labels(check).set(1 if ok else 0)
        return checks

    def describe(self) -> dict[str, str]:
        """What /readyz adds to its checks for an operator: the lease."""
        if self.worker is None:
            return {}
        status = self.worker.status()
        lease = (
            "held"
            if status.leader
            else "standing by"
            if status.standing_by
            else "not acquired"
        )
        return {"lease": lease}

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        caught_up_at = loop.time()
        while True:
            await self._purge(loop.time())
            checks = await self.ready()
            if self.grpc_health is not None:
                await self.grpc_health.set(checks["store"])
            if checks["store"]:
                try:
                    await self._poll()
                except Exception as e:
                    # The next round tries again; readiness reports the store.
                    log.warning(
                        "could not read positions and counts",
                        error=f"{type(e).__name__}: {e}",
                    )
            head, applied = self.head.position, self.applied.position
            lag = max(0, head - applied)
            if lag == 0:
                caught_up_at = loop.time()
            m = self.metrics
            m.head_position.set(head)
            m.applied_position.set(applied)
            m.lag_events.set(lag)
            m.lag_seconds.set(loop.time() - caught_up_at)
            m.position_waits.labels("head").set(self.head.waiting)
            m.position_waits.labels("applied").set(self.applied.waiting)
            await asyncio.sleep(self.interval)

    async def _poll(self) -> None:
        if self.worker is None:
            # Another process applies: a slow poll backs up NOTIFY.
            self.applied.advance(await asyncio.to_thread(self.models.applied_position))
        if not self.follow_events:
            self.head.advance(await asyncio.to_thread(self.events.head))
        dead, quarantined = await asyncio.to_thread(self._counts)
        self.metrics.dead_letters.set(dead)
        self.metrics.quarantine_open.set(quarantined)

    def _counts(self) -> tuple[int, int]:
        return self.models.dead_letter_count(), self.quarantine.open_count()

    async def _purge(self, now: float) -> None:
        # Quarantined requests past their retention; the worker's process
        # does it, so that one process does.
        if self.worker is None:
            return
        if self._purged_at is not None and now - self._purged_at < PURGE_INTERVAL:
            return
        self._purged_at = now
        cutoff = datetime.now(UTC) - timedelta(days=self.retention_days)
        try:
            purged = await asyncio.to_thread(self.quarantine.purge, cutoff)
        except Exception as e:
            log.warning("could not purge the quarantine", error=str(e))
            return
        if purged:
            log.info("purged quarantined requests past retention", count=purged)
