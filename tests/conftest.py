"""Shared fixtures. PostgreSQL tests get a fresh schema each and drop it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

PG_BASE = os.environ.get(
    "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


_STATE: dict[str, bool] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    missing = _STATE.get("pg_missing")
    if missing is None and terminalreporter.config.pluginmanager.hasplugin("dsession"):
        # pytest-xdist's controller: its workers ran the fixture, not this process.
        missing = not _pg_reachable()
    if missing:
        terminalreporter.write_sep(
            "!",
            f"PostgreSQL NOT REACHABLE at {PG_BASE}: ITS TESTS WERE SKIPPED",
            red=True,
        )


def _pg_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_BASE, connect_timeout=3):
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_available() -> bool:
    ok = _pg_reachable()
    if not ok and os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is not reachable at {PG_BASE}, and CI must test it")
    _STATE["pg_missing"] = not ok
    return ok


@pytest.fixture
def pg_admin_url(pg_available: bool) -> str:
    """The whole test database, for tests that create databases of their own."""
    if not pg_available:
        pytest.skip(f"PostgreSQL NOT REACHABLE at {PG_BASE}: backend untested here")
    return PG_BASE


@pytest.fixture
def pg_url(pg_available: bool) -> Iterator[str]:
    if not pg_available:
        pytest.skip(f"PostgreSQL NOT REACHABLE at {PG_BASE}: backend untested here")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield f"{PG_BASE}?schema={schema}"
    with psycopg.connect(PG_BASE, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
