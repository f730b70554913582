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
from service import logs
from service.config import Settings
from service.eventstore import EventStore
from service.masterkey import resolve_master_key
from service.metrics import Metrics
from service.quarantine import Quarantine
from service.rpc.answers import ANSWERS

if TYPE_CHECKING:
    from eventsourcing.postgres import PostgresFactory
    from eventsourcing.sqlite import SQLiteFactory

    from service.privacy import Privacy

log = logs.get(__name__)


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

    def privacy(self) -> Privacy:
        """Erasure and export over this container's stores."""
        from service.privacy import Privacy, postgres_scrubber, sqlite_scrubber

        settings, models = self.settings, self.models
        if settings.database_url:

            def tables() -> list[str]:
                g = models.current_generation(refresh=True)
                keyring = self.events.keyring.t
                # The tables whose deleted rows held personal data or keys
                # (ledger, history and dead letters hold ids and numbers).
                return [
                    keyring.data_keys,
                    self.quarantine.table,
                    models.db.name(f"customers_{g}"),
                ]

            scrub = postgres_scrubber(settings.database_url, tables)
        else:
            scrub = sqlite_scrubber(
                [settings.data_dir / "events.sqlite", models.db.path]  # type: ignore[attr-defined]
            )
        return Privacy(self.events, self.quarantine, models, scrub)

    def close(self) -> None:
        for close in reversed(self.closers):
            close()
        self.closers.clear()


def build(settings: Settings) -> Container:
    master, key_file, created = resolve_master_key(settings)
    if created:
        log.warning(
            "created a new master key; back it up apart from the data, and set "
            "MASTER_KEY_FILE in production",
            path=str(key_file),
            key_id=master.id,
        )
    factory: PostgresFactory | SQLiteFactory
    if settings.database_url:
        from projections.stores.postgres import open_postgres_read_models
        from service.postgres_store import open_postgres, schema_lock

        with schema_lock(settings.database_url):
            events, quarantine, factory = open_postgres(settings.database_url, master)
            models = open_postgres_read_models(settings.database_url, ANSWERS)
    else:
        from projections.stores.sqlite import open_sqlite_read_models
        from service.sqlite_store import open_sqlite

        events, quarantine, factory = open_sqlite(settings.data_dir, master)
        models = open_sqlite_read_models(
            settings.data_dir / "readmodels.sqlite", ANSWERS
        )
    if events.keyring.legacy_through():
        log.warning(
            "the store holds events written before encryption; run "
            "`loyalty keys encrypt-existing` to encrypt them",
            through_position=events.keyring.legacy_through(),
        )
    container = Container(
        settings=settings, events=events, quarantine=quarantine, models=models
    )
    container.closers.append(factory.close)
    container.closers.append(models.db.close)
    return container
