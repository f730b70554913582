"""Containers over fresh stores for tests that run programs against real
backends: SQLite in a temporary directory, PostgreSQL in a schema of its own."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.bootstrap import Container, build
from service.config import Settings
from testkit.keys import master_key_file


@contextmanager
def sqlite_container() -> Iterator[Container]:
    with tempfile.TemporaryDirectory() as tmp:
        c = build(
            Settings.from_environ({"DATA_DIR": str(Path(tmp))}, require_secret=False)
        )
        try:
            yield c
        finally:
            c.close()


@contextmanager
def pg_container(pg_url: str) -> Iterator[Container]:
    """A store in a schema of its own (one per example), dropped after."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    base = pg_url.split("?")[0]
    c = build(
        Settings.from_environ(
            {
                "DATABASE_URL": f"{base}?schema={schema}",
                "MASTER_KEY_FILE": str(master_key_file()),
            },
            require_secret=False,
        )
    )
    try:
        yield c
    finally:
        c.close()
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # type: ignore[arg-type]
