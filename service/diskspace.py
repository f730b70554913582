"""Whether the store has room for writes, for readiness.

A store that refuses writes for lack of space still answers reads and
pings, so the ping alone would keep an ingress "ready" while every webhook
gets 503. An append that fails for lack of space marks the store full;
from then on readiness probes it (a small committed write, at most once a
`every` seconds) until a write succeeds again, from the probe or from an
append: traffic comes back when the orchestrator routes it back.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable

import psycopg

# SQLite's text for SQLITE_FULL; PostgreSQL's SQLSTATE 53100 (disk_full).
_SQLITE_FULL = "database or disk is full"
_PG_DISK_FULL = "53100"


def is_out_of_space(error: BaseException) -> bool:
    """The error, or one it was raised from, says the disk is full."""
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            return True
        if isinstance(e, psycopg.Error) and e.sqlstate == _PG_DISK_FULL:
            return True
        if _SQLITE_FULL in str(e):
            return True
        e = e.__cause__ or e.__context__
    return False


class WriteSpace:
    """`probe()` commits a small write, raising what the store raises."""

    def __init__(self, probe: Callable[[], None], every: float = 1.0) -> None:
        self._probe = probe
        self.every = every
        self.full = False
        self._probed_at = float("-inf")
        self._lock = threading.Lock()

    def saw(self, error: BaseException) -> None:
        """An append failed with `error`."""
        if is_out_of_space(error):
            self.full = True

    def wrote(self) -> None:
        """An append succeeded: there is room again."""
        self.full = False

    def writable(self) -> bool:
        """False while the store is known to be out of space."""
        if not self.full:
            return True
        with self._lock:  # one probe at a time, however many ask
            now = time.monotonic()
            if self.full and now - self._probed_at >= self.every:
                self._probed_at = now
                try:
                    self._probe()
                    self.full = False
                except Exception:  # still full, or unreachable (the ping says)
                    pass
        return not self.full
