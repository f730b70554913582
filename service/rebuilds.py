"""Online rebuilds started from the API: one at a time, in a thread."""

from __future__ import annotations

import threading
import time

from projections.projector import EventSource
from projections.rebuild import RebuildProgress, rebuild
from projections.stores.sql import SqlReadModels
from service import logs
from service.backends.base import Backend
from service.metrics import Metrics
from service.rebuildreader import process_reader

log = logs.get(__name__)


class Rebuilds:
    def __init__(
        self,
        source: EventSource,
        models: SqlReadModels,
        metrics: Metrics | None = None,
        backend: Backend | None = None,
    ) -> None:
        """With `backend`, a reader process of its own reads the events
        (service/rebuildreader.py); without, this process does."""
        self.source = source
        self.backend = backend
        self.models = models
        self.metrics = metrics
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.progress: RebuildProgress | None = None
        self.last_error: str | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> tuple[bool, int]:
        """(started, target position); a running rebuild is not restarted."""
        with self._lock:
            if self.running:
                return False, self.progress.target if self.progress else 0
            target = self.source.head()
            self.last_error = None  # it describes the last finished rebuild
            # Visible at once, before the first batch reports.
            self.progress = RebuildProgress(0, 0, target, 0.0, 0.0, time.time(), False)
            self._thread = threading.Thread(
                target=self._run, name="projection-rebuild", daemon=True
            )
            self._thread.start()
            return True, target

    def _run(self) -> None:
        try:
            if self.backend is None:
                done = rebuild(
                    self.source, self.models, on_progress=self._note, stop=self._stop
                )
            else:
                with process_reader(self.backend, self.source) as source:
                    done = rebuild(
                        source, self.models, on_progress=self._note, stop=self._stop
                    )
            log.info("rebuild complete", position=done.done)
            self.last_error = None
            if self.metrics is not None:
                self.metrics.rebuild_failed.set(0)
        except Exception as e:
            # Bounded: a driver's message can be long; the log has it all.
            self.last_error = f"{type(e).__name__}: {e}"[:500]
            log.exception("rebuild failed")
            if self.metrics is not None:
                self.metrics.rebuild_failures.inc()
                self.metrics.rebuild_failed.set(1)

    def _note(self, progress: RebuildProgress) -> None:
        self.progress = progress

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
