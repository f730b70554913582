"""The embedded default: SQLite files under DATA_DIR, one process.

events.sqlite holds the event log, the keys and the quarantine;
readmodels.sqlite the read models, so the ingress and the worker never wait
for each other's write lock.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from projections.lease import Lease, SoleWorker
from projections.stores.answers import Answers
from projections.stores.sql import SqlReadModels
from projections.stores.sqlite import open_sqlite_read_models
from service.backends.base import Applied, Notifications, OpenedEvents
from service.backends.sqlite.store import EVENTS_FILE, open_sqlite
from service.eventstore import EventStore
from service.masterkey import MasterKey, embedded_master_key, read_master_key
from service.quarantine import Quarantine

MODELS_FILE = "readmodels.sqlite"


class SqliteBackend:
    name = "sqlite"
    inline_reads = True  # a point read is a local B-tree lookup
    shared_writers = False  # SQLite has one writer: one ingress process

    def __init__(self, data_dir: Path, master_key_file: Path | None = None) -> None:
        self.data_dir = data_dir
        self.master_key_file = master_key_file

    def where(self) -> str:
        return str(self.data_dir.resolve())

    def master_key(self) -> tuple[MasterKey, Path, bool]:
        # Only the embedded default may create a key, and only under DATA_DIR.
        if self.master_key_file is not None:
            return read_master_key(self.master_key_file), self.master_key_file, False
        return embedded_master_key(self.data_dir)

    def open_events(self, master: MasterKey) -> OpenedEvents:
        events, quarantine, factory = open_sqlite(self.data_dir, master)
        return OpenedEvents(events, quarantine, factory.close)

    def open_models(self, answers: Answers) -> SqlReadModels:
        return open_sqlite_read_models(self.data_dir / MODELS_FILE, answers)

    def worker_lease(self) -> Lease:
        return SoleWorker()  # one process: its worker is the only one

    def notifications(
        self,
        events: EventStore,
        *,
        on_events: Callable[[], None] | None,
        on_applied: Callable[[Applied | None], None],
    ) -> Notifications | None:
        return None  # one process: the parts tell each other directly

    def scrubber(
        self, events: EventStore, quarantine: Quarantine, models: SqlReadModels
    ) -> Callable[[], None]:
        from service.privacy import sqlite_scrubber

        return sqlite_scrubber(
            [self.data_dir / EVENTS_FILE, models.db.path]  # type: ignore[attr-defined]
        )
