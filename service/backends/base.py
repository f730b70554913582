"""What a storage backend gives the service: the one seam between the
composition root and a database.

A backend owns its SQL dialect, how its event store (with its keys and
quarantine) and its read-model store are opened and migrated, who may
apply projections (the worker lease), how processes hear of each other's
commits, and what clears deleted rows' remains after an erasure. The rest
of the service never asks which database it runs on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from projections.lease import Lease
from projections.stores.answers import Answers
from projections.stores.sql import SqlReadModels
from service.eventstore import EventStore
from service.masterkey import MasterKey
from service.positions import PositionWatch
from service.quarantine import Quarantine


@dataclass(frozen=True)
class OpenedEvents:
    """The event store and quarantine, and what closes their connections."""

    events: EventStore
    quarantine: Quarantine
    close: Callable[[], None]


@dataclass(frozen=True, slots=True)
class Applied:
    """Another process's read-model commit: `generation` reached `position`."""

    generation: int
    position: int


@dataclass(frozen=True)
class Local:
    """This process: the roles it runs and the positions it reaches itself
    (its own commits' head, its worker's applied position), for a backend
    whose database does not tell other processes of commits."""

    roles: frozenset[str]
    head: PositionWatch
    applied: PositionWatch


class Notifications(Protocol):
    """A thread that hears other processes' commits; started and stopped by
    the runtime."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


class Backend(Protocol):
    """One database the service can run on."""

    name: str  # as `loyalty status` shows it
    # Reads are quick local lookups, answered on the event loop rather than
    # through a thread.
    inline_reads: bool
    # Several processes may append at once (`loyalty ingress --workers N`).
    shared_writers: bool
    # Seconds the projection worker lingers under load by default
    # (PROJECTION_LINGER_MS; projections/worker.py): what a wake-up costs
    # whatever its size decides it.
    worker_linger: float

    def where(self) -> str:
        """Where the data is, for an operator (never a password)."""
        ...

    def master_key(self) -> tuple[MasterKey, Path, bool]:
        """(key, its file, whether it was just created); raises ConfigError
        when this backend needs a key file that is not set."""
        ...

    def open_events(self, master: MasterKey) -> OpenedEvents:
        """The event store, its keys and the quarantine, at the newest schema."""
        ...

    def open_models(self, answers: Answers) -> SqlReadModels:
        """The read models, at the newest schema."""
        ...

    def worker_lease(self) -> Lease:
        """Permission to apply: one projection worker at a time."""
        ...

    def notifications(
        self,
        events: EventStore,
        *,
        on_events: Callable[[int | None], None] | None,
        on_applied: Callable[[Applied | None], None],
        local: Local | None = None,
    ) -> Notifications | None:
        """Calls back when another process appends events (`on_events`, if
        given) or commits read models (`on_applied`; None: anything may have
        happened, read the position again), and tells the others of
        `local`'s progress where the database does not. None where one
        process does everything and tells its parts directly."""
        ...

    def scrubber(
        self, events: EventStore, quarantine: Quarantine, models: SqlReadModels
    ) -> Callable[[], None]:
        """What clears the remains of rows an erasure deleted."""
        ...
