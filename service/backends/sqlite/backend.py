"""The embedded default: SQLite files under DATA_DIR, one process (or a
front and a projector process, `loyalty run --split`).

events.sqlite holds the event log, the keys and the quarantine;
readmodels.sqlite the read models, so the ingress and the worker never wait
for each other's write lock.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from projections.lease import Lease, SoleWorker
from projections.stores.answers import Answers
from projections.stores.sql import SqlReadModels
from projections.stores.sqlite import open_sqlite_read_models
from service import logs
from service.backends.base import Applied, Local, Notifications, OpenedEvents
from service.backends.sqlite.files import EVENTS_FILE, MODELS_FILE
from service.backends.sqlite.keyfile import embedded_master_key
from service.backends.sqlite.notify import APPLIED, EVENTS, Link
from service.backends.sqlite.store import open_sqlite
from service.eventstore import EventStore
from service.masterkey import MasterKey, read_master_key
from service.quarantine import Quarantine

log = logs.get(__name__)


class SqliteBackend:
    name = "sqlite"
    inline_reads = True  # a point read is a local B-tree lookup
    shared_writers = False  # SQLite has one writer: one ingress process
    # A wake-up's fixed cost is ~0.3 ms: batches past a commit's size save
    # nothing measurable, so events are applied at once.
    worker_linger = 0.0

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
        # One process, or `run --split`'s one projector: the only worker.
        return SoleWorker()

    def notifications(
        self,
        events: EventStore,
        *,
        on_events: Callable[[int | None], None] | None,
        on_applied: Callable[[Applied | None], None],
        local: Local | None = None,
    ) -> Notifications | None:
        if local is None or {"ingress", "worker", "api"} <= local.roles:
            return None  # one process: the parts tell each other directly
        # Heard: new events where the worker runs, applied positions where
        # the API waits for them; either is read from the database (None).
        on: dict[str, Callable[[int | None], None]] = {}
        if "worker" in local.roles and on_events is not None:
            on[EVENTS] = on_events
        if "api" in local.roles:
            on[APPLIED] = lambda _position: on_applied(None)
        link = Link(self.data_dir, on)
        # Told: this process's own commits (an API's: its erasures' records)
        # and applied batches.
        if local.roles & {"ingress", "writer", "api"}:
            local.head.follow(lambda position: link.send(EVENTS, position))
        if "worker" in local.roles:
            local.applied.follow(lambda position: link.send(APPLIED, position))
        return link

    def scrubber(
        self, events: EventStore, quarantine: Quarantine, models: SqlReadModels
    ) -> Callable[[], None]:
        return truncate_logs(
            [self.data_dir / EVENTS_FILE, models.db.path]  # type: ignore[attr-defined]
        )


def truncate_logs(paths: Sequence[Path | str]) -> Callable[[], None]:
    """Checkpoint each database's write-ahead log into the file and truncate
    it, so the log keeps no image of a page from before the erasure (deleted
    content in the file itself is zeroed by secure_delete)."""

    def scrub() -> None:
        for path in paths:
            conn = sqlite3.connect(str(path), timeout=10)
            try:
                for _ in range(100):  # a reader mid-query holds the log
                    busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                    if not busy:
                        break
                    time.sleep(0.02)
                else:
                    log.warning(
                        "could not truncate the write-ahead log", path=str(path)
                    )
            finally:
                conn.close()

    return scrub
