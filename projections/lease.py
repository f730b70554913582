"""Who may apply: one projection worker at a time.

The lease is a protocol so the worker stays free of SQL; each storage
backend gives its own (service/backends/: an advisory lock on PostgreSQL).
"""

from __future__ import annotations

from typing import Protocol


class Lease(Protocol):
    """Permission to apply; only one worker holds it at a time."""

    def acquire(self) -> bool: ...
    def release(self) -> None: ...


class SoleWorker:
    """The lease when only one worker can exist (embedded SQLite)."""

    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass
