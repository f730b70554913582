"""The stores every role shares: `build` opens them as Settings name them
(the `Container`); a test passes its own instead."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from projections.lease import Lease
from projections.stores.sql import SqlReadModels
from service import logs
from service.backends import Backend, OpenedEvents, backend_for
from service.config import Settings
from service.eventstore import EventStore
from service.metrics import Metrics
from service.quarantine import Quarantine
from service.rpc.answers import ANSWERS

if TYPE_CHECKING:  # imported where used: only the API and the CLI need it
    from service.privacy import Privacy

log = logs.get(__name__)


@dataclass
class Container:
    """The stores and what every role shares; `close` closes the stores."""

    settings: Settings
    backend: Backend
    events: EventStore
    quarantine: Quarantine
    models: SqlReadModels
    metrics: Metrics = field(default_factory=Metrics)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def worker_lease(self) -> Lease:
        """Who may apply: one worker at a time, the rest wait."""
        return self.backend.worker_lease()

    def privacy(self) -> Privacy:
        """Erasure and export over this container's stores."""
        from service.privacy import Privacy

        scrub = self.backend.scrubber(self.events, self.quarantine, self.models)
        return Privacy(self.events, self.quarantine, self.models, scrub)

    def close(self) -> None:
        for close in reversed(self.closers):
            close()
        self.closers.clear()


def build(
    settings: Settings,
    *,
    backend: Backend | None = None,
    events: EventStore | None = None,
    quarantine: Quarantine | None = None,
    models: SqlReadModels | None = None,
    metrics: Metrics | None = None,
) -> Container:
    """Open the stores `settings` name (on `backend`, if given); the ones
    given are used instead (and closing the container does not close them)."""
    backend = backend or backend_for(settings)
    closers: list[Callable[[], None]] = []
    if events is None or quarantine is None:
        opened = _open_events(backend)
        closers.append(opened.close)
        events = events or opened.events
        quarantine = quarantine or opened.quarantine
    if models is None:
        models = backend.open_models(ANSWERS)
        closers.append(models.db.close)
    if events.keyring.legacy_through():
        log.warning(
            "the store holds events written before encryption; run "
            "`loyalty keys encrypt-existing` to encrypt them",
            through_position=events.keyring.legacy_through(),
        )
    return Container(
        settings=settings,
        backend=backend,
        events=events,
        quarantine=quarantine,
        models=models,
        metrics=metrics or Metrics(),
        closers=closers,
    )


def _open_events(backend: Backend) -> OpenedEvents:
    master, key_file, created = backend.master_key()
    if created:
        log.warning(
            "created a new master key; back it up apart from the data, and set "
            "MASTER_KEY_FILE in production",
            path=str(key_file),
            key_id=master.id,
        )
    return backend.open_events(master)
