"""The one composition root: builds every part from Settings.

Entrypoints (the CLI, tests) call `build`; nothing is built at import time.
Tests may pass their own parts instead of the real ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from projections.lease import Lease, SoleWorker
from projections.stores.sql import SqlReadModels
from service.config import Settings
from service.eventstore import EventStore
from service.metrics import Metrics
from service.quarantine import Quarantine

if TYPE_CHECKING:
    from eventsourcing.postgres import PostgresFactory
    from eventsourcing.sqlite import SQLiteFactory


@dataclass
class Container:
    settings: Settings
    events: EventStore
    quarantine: Quarantine
    models: SqlReadModels
    metrics: Metrics = field(default_factory=Metrics)
    closers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def events_channel(self) -> str:
        """The channel the event store's recorder NOTIFYs on insert."""
        return str(getattr(self.events.recorder, "channel_name", ""))

    def worker_lease(self) -> Lease:
        """Who may apply: on PostgreSQL one worker at a time, the rest wait."""
        if self.settings.database_url:
            from projections.stores.postgres import PostgresLease

            return PostgresLease(self.settings.database_url)
        return SoleWorker()

    def close(self) -> None:
        for close in reversed(self.closers):
            close()
        self.closers.clear()


def build(settings: Settings) -> Container:
    factory: PostgresFactory | SQLiteFactory
    if settings.database_url:
        from projections.stores.postgres import open_postgres_read_models
        from service.postgres_store import open_postgres, schema_lock

        with schema_lock(settings.database_url):
            events, quarantine, factory = open_postgres(settings.database_url)
            models = open_postgres_read_models(settings.database_url)
    else:
        from projections.stores.sqlite import open_sqlite_read_models
        from service.sqlite_store import open_sqlite

        events, quarantine, factory = open_sqlite(settings.data_dir)
        models = open_sqlite_read_models(settings.data_dir / "readmodels.sqlite")
    container = Container(
        settings=settings, events=events, quarantine=quarantine, models=models
    )
    container.closers.append(factory.close)
    container.closers.append(models.db.close)
    return container
