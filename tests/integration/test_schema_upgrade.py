"""Stores written by the version before schema versions open, upgrade to
the newest schema and keep everything they held (tests/fixtures/
landed_store/make.py wrote them with that version's code)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import psycopg
import pytest

from projections.stores.migrations import (
    Migration,
    SchemaTooNew,
    current_version,
    migrate,
)
from projections.stores.schema import migrations as read_model_migrations
from projections.worker import ProjectionWorker
from service.backends import Backend
from service.backends.postgres import schema as pg_schema
from service.backends.postgres.backend import PostgresBackend
from service.backends.sqlite import schema as lite_schema
from service.backends.sqlite.backend import SqliteBackend
from service.ingest import parse_envelope
from service.rpc.answers import ANSWERS

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "landed_store"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())
KEY = FIXTURE / "sqlite" / "master.key"


def landed_sqlite(tmp_path: Path) -> Backend:
    data_dir = tmp_path / "var"
    shutil.copytree(FIXTURE / "sqlite", data_dir)
    return SqliteBackend(data_dir)


def landed_postgres(pg_url: str) -> Backend:
    backend = PostgresBackend(pg_url, KEY)
    lines = (FIXTURE / "postgres.sql").read_text().splitlines()
    # psql's own commands (\restrict) are not SQL.
    script = "\n".join(line for line in lines if not line.startswith("\\"))
    with psycopg.connect(pg_url.partition("?")[0], autocommit=True) as conn:
        conn.execute(script.replace("landed_store", backend.schema))  # type: ignore[call-overload]
    return backend


@pytest.fixture(params=["sqlite", "postgres"])
def landed(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Backend]:
    if request.param == "sqlite":
        return "sqlite", landed_sqlite(tmp_path)
    return "postgres", landed_postgres(request.getfixturevalue("pg_url"))


def versions(backend: Backend) -> tuple[dict[str, int], dict[str, int]]:
    """(the versions each store records, the newest this build knows)."""
    opened = backend.open_events(backend.master_key()[0])
    models = backend.open_models(ANSWERS)
    try:
        recorder: Any = opened.events.recorder
        if isinstance(backend, PostgresBackend):
            table, p = f'"{backend.schema}".schema_version', "%s"
            events_newest = len(pg_schema.migrations(backend.schema))
        else:
            table, p = "schema_version", "?"
            events_newest = len(lite_schema.MIGRATIONS)

        def events_tx() -> Any:
            return recorder.datastore.transaction(commit=True)

        db = models.db
        recorded = {
            "events": current_version(events_tx, table, p, "events"),
            "read_models": current_version(
                db.write, db.name("schema_version"), db.p, "read_models"
            ),
        }
        return recorded, {
            "events": events_newest,
            "read_models": len(read_model_migrations(db)),
        }
    finally:
        models.db.close()
        opened.close()


def test_a_landed_store_opens_upgraded_with_everything_it_held(
    landed: tuple[str, Backend],
) -> None:
    kind, backend = landed
    expected = EXPECTED[kind]
    opened = backend.open_events(backend.master_key()[0])
    models = backend.open_models(ANSWERS)
    try:
        events = opened.events.read(0, 1000)
        assert [
            [e.position, e.id, e.customer_id, e.type_name, e.raw.decode()]
            for e in events
        ] == expected["events"]
        assert opened.events.head() == expected["head"]
        assert opened.quarantine.open_count() == expected["quarantine_open"]
        ids = sorted({e.customer_id for e in events})
        states = {cid: s.hex() for cid, s in models.get_states(ids).items()}
        assert states == expected["states"]
        assert expected["erased"] not in states
        assert models.applied_position() == expected["applied"]

        # And it takes new events as a new store would.
        body = (
            b'{"id":"after-upgrade","customerId":"cus-0000001",'
            b'"createdAt":"2026-01-01T00:00:00Z","properties":{"amount":5}}'
        )
        (answer,) = opened.events.append([parse_envelope(body, "Balance changed")])
        assert answer.status == "accepted" and answer.position > expected["head"]
        ProjectionWorker(opened.events, models).run_once()
        assert models.applied_position() == answer.position
    finally:
        models.db.close()
        opened.close()
    recorded, newest = versions(backend)
    assert recorded == newest and newest == {"events": 2, "read_models": 3}


def email_index_columns(backend: Backend) -> list[str]:
    """The columns of the current generation's email index."""
    models = backend.open_models(ANSWERS)
    try:
        g, db = models.current_generation(refresh=True), models.db
        with db.read() as c:
            if isinstance(backend, PostgresBackend):
                c.execute(
                    "SELECT a.attname FROM pg_index i "
                    "JOIN pg_attribute a ON a.attrelid = i.indrelid "
                    "AND a.attnum = ANY(i.indkey) WHERE i.indexrelid = %s::regclass",
                    (f'"{backend.schema}".customers_{g}_email',),
                )
            else:
                c.execute(f"SELECT name FROM pragma_index_info('customers_{g}_email')")
            return sorted(row[0] for row in c.fetchall())
    finally:
        models.db.close()


def test_the_email_index_loses_its_recency_key_and_lookups_still_answer(
    landed: tuple[str, Backend],
) -> None:
    """The landed store's email index held the recency key, which moved the
    index entry at nearly every upsert; the upgrade keys it on the email."""
    _kind, backend = landed
    opened = backend.open_events(backend.master_key()[0])
    models = backend.open_models(ANSWERS)
    try:
        bodies = [
            b'{"id":"e-older","customerId":"cus-a","email":"Shared@Example.com",'
            b'"createdAt":"2026-01-01T00:00:00Z","properties":{"amount":5}}',
            b'{"id":"e-newer","customerId":"cus-b","email":"shared@example.com",'
            b'"createdAt":"2026-01-02T00:00:00Z","properties":{"amount":5}}',
            b'{"id":"e-newest","customerId":"cus-a","email":"shared@example.com",'
            b'"createdAt":"2026-01-03T00:00:00Z","properties":{"amount":5}}',
            b'{"id":"e-moved","customerId":"cus-b","email":"moved@example.com",'
            b'"createdAt":"2026-01-04T00:00:00Z","properties":{"amount":5}}',
        ]
        for body in bodies:  # a batch each: every upsert after the first
            opened.events.append([parse_envelope(body, "Balance changed")])
            ProjectionWorker(opened.events, models).run_once()
        found = models.lookup_answer("SHARED@example.com")
        assert found is not None and found[0] == "cus-a"
        moved = models.lookup_answer("moved@example.com")
        assert moved is not None and moved[0] == "cus-b"
    finally:
        models.db.close()
        opened.close()
    assert email_index_columns(backend) == ["email_lower"]


def test_upgrading_again_changes_nothing(landed: tuple[str, Backend]) -> None:
    _kind, backend = landed
    versions(backend)  # the first opening upgrades
    if isinstance(backend, PostgresBackend):
        applied = pg_schema.migrate_events(_pg_transaction(backend), backend.schema)
    else:
        applied = lite_schema.migrate_events(_lite_transaction(backend))
    assert applied == []


def _lite_transaction(backend: Any) -> Any:
    import sqlite3
    from contextlib import contextmanager

    @contextmanager
    def tx() -> Any:
        # As the library's transactions: DDL inside BEGIN ... COMMIT too.
        conn = sqlite3.connect(backend.data_dir / "events.sqlite", isolation_level=None)
        try:
            c = conn.cursor()
            c.execute("BEGIN")
            try:
                yield c
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        finally:
            conn.close()

    return tx


def _pg_transaction(backend: Any) -> Any:
    from contextlib import contextmanager

    @contextmanager
    def tx() -> Any:
        url = backend.database_url.partition("?")[0]
        with psycopg.connect(url) as conn, conn.transaction():
            yield conn.cursor()

    return tx


def test_a_store_from_a_newer_build_is_refused(tmp_path: Path) -> None:
    backend = landed_sqlite(tmp_path)
    versions(backend)
    tx = _lite_transaction(backend)
    with tx() as c:
        c.execute("UPDATE schema_version SET version = 99 WHERE store = 'events'")
    with pytest.raises(SchemaTooNew, match="schema version 99"):
        backend.open_events(backend.master_key()[0])


def test_migrations_apply_in_order_each_with_its_version(tmp_path: Path) -> None:
    tx = _lite_transaction(SqliteBackend(tmp_path))
    (tmp_path / "events.sqlite").touch()
    seen: list[int] = []

    def step(n: int) -> Migration:
        return Migration(n, f"step {n}", lambda c: seen.append(n))

    assert [m.version for m in migrate(tx, "v", "?", "s", [step(1), step(2)])] == [
        1,
        2,
    ]
    assert seen == [1, 2]
    grown = [step(1), step(2), step(3)]
    assert [m.version for m in migrate(tx, "v", "?", "s", grown)] == [3]
    assert seen == [1, 2, 3]
    with pytest.raises(ValueError, match="numbered"):
        migrate(tx, "v", "?", "s", [step(1), step(3)])


def test_a_failed_migration_leaves_the_version_it_fully_has(tmp_path: Path) -> None:
    tx = _lite_transaction(SqliteBackend(tmp_path))

    def create(c: Any) -> None:
        c.execute("CREATE TABLE t (a TEXT)")

    def broken(c: Any) -> None:
        c.execute("ALTER TABLE t ADD COLUMN b TEXT")
        raise RuntimeError("half done")

    with pytest.raises(RuntimeError):
        migrate(
            tx, "v", "?", "s", [Migration(1, "t", create), Migration(2, "b", broken)]
        )
    assert current_version(tx, "v", "?", "s") == 1
    with tx() as c:
        c.execute("SELECT name FROM pragma_table_info('t')")
        assert [r[0] for r in c.fetchall()] == ["a"]  # the half rolled back


def test_a_migration_another_process_applied_meanwhile_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tx = _lite_transaction(SqliteBackend(tmp_path))
    seen: list[int] = []
    steps = [Migration(n, f"step {n}", lambda c, n=n: seen.append(n)) for n in (1, 2)]
    migrate(tx, "v", "?", "s", steps[:1])

    def stale(*args: Any) -> int:
        return current_version(*args) - 1  # read before another process committed

    monkeypatch.setattr("projections.stores.migrations.current_version", stale)
    applied = migrate(tx, "v", "?", "s", steps)
    assert [m.version for m in applied] == [2] and seen == [1, 2]
