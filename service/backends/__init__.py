"""The storage backends, one package each, and the choice between them.

`backend_for` is the one place that reads which database the settings
name; everything else holds a `Backend` (see base.py). A third backend is
one more package here beside sqlite/ and postgres/, one more line in
`backend_for`, and its run of the contract tests.
"""

from __future__ import annotations

from service.backends.base import (
    Applied,
    Backend,
    Local,
    Notifications,
    OpenedEvents,
)
from service.config import Settings

__all__ = [
    "Applied",
    "Backend",
    "Local",
    "Notifications",
    "OpenedEvents",
    "backend_for",
]


def backend_for(settings: Settings) -> Backend:
    """The backend `settings` name: PostgreSQL with DATABASE_URL, else the
    embedded SQLite files under DATA_DIR."""
    if settings.database_url:
        from service.backends.postgres.backend import PostgresBackend

        return PostgresBackend(settings.database_url, settings.master_key_file)
    from service.backends.sqlite.backend import SqliteBackend

    return SqliteBackend(settings.data_dir, settings.master_key_file)
