"""The Backend contract, run against every backend: what the composition
root relies on when it asks `backend_for(settings)` for one."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from projections.stores.answers import NO_ANSWERS
from service.backends import Applied, Backend, backend_for
from service.backends.postgres.backend import PostgresBackend
from service.backends.sqlite.backend import SqliteBackend
from service.config import ConfigError, Settings
from service.ingest import Envelope, parse_envelope
from testkit.keys import master_key, master_key_file


def settings(**env: str) -> Settings:
    return Settings.from_environ({"WEBHOOK_SECRET": "s", **env})


def envelope(event_id: str) -> Envelope:
    body = (
        f'{{"id":"{event_id}","customerId":"c1",'
        '"createdAt":"2026-03-08T12:00:00Z","properties":{"amount":5}}'
    )
    return parse_envelope(body.encode(), "Balance changed")


def test_the_settings_choose_the_backend(tmp_path: Path) -> None:
    assert isinstance(backend_for(settings(DATA_DIR=str(tmp_path))), SqliteBackend)
    url = "postgresql://u:secret@db:5432/x?schema=s1"
    chosen = backend_for(settings(DATABASE_URL=url))
    assert isinstance(chosen, PostgresBackend)
    assert chosen.schema == "s1"
    assert "secret" not in chosen.where()


def test_only_the_embedded_default_creates_a_master_key(tmp_path: Path) -> None:
    key, path, created = SqliteBackend(tmp_path).master_key()
    assert created and path == tmp_path / "master.key"
    again, _, created_again = SqliteBackend(tmp_path).master_key()
    assert again.id == key.id and not created_again
    with pytest.raises(ConfigError, match="MASTER_KEY_FILE is missing"):
        PostgresBackend("postgresql://u@db/x").master_key()
    given = PostgresBackend("postgresql://u@db/x", master_key_file()).master_key()
    assert given[0].id == master_key().id and not given[2]


def test_opened_stores_work_and_close(backend: Backend) -> None:
    opened = backend.open_events(master_key())
    models = backend.open_models(NO_ANSWERS)
    try:
        (answer,) = opened.events.append([envelope("e1")])
        assert answer.status == "accepted"
        assert opened.events.head() == answer.position
        assert opened.quarantine.open_count() == 0
        assert models.applied_position() == 0 and models.current_generation() == 1
    finally:
        models.db.close()
        opened.close()


def test_the_worker_lease_admits_one_worker(backend: Backend) -> None:
    first, second = backend.worker_lease(), backend.worker_lease()
    try:
        assert first.acquire()
        assert first.acquire()  # still held
        # One process on SQLite: its only worker. Elsewhere the second waits.
        assert second.acquire() is (not backend.shared_writers)
        first.release()
        if backend.shared_writers:
            assert second.acquire()  # a standby takes over
    finally:
        first.release()
        second.release()


def test_sqlite_scrub_empties_the_write_ahead_logs(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path)
    opened = backend.open_events(master_key())
    models = backend.open_models(NO_ANSWERS)
    try:
        opened.events.append([envelope("e1")])
        logs = [tmp_path / "events.sqlite-wal", tmp_path / "readmodels.sqlite-wal"]
        assert logs[0].stat().st_size > 0
        backend.scrubber(opened.events, opened.quarantine, models)()
        assert [log.stat().st_size for log in logs] == [0, 0]
    finally:
        models.db.close()
        opened.close()


def test_postgres_scrub_vacuums_the_erased_tables(pg_url: str) -> None:
    backend = PostgresBackend(pg_url, master_key_file())
    opened = backend.open_events(master_key())
    models = backend.open_models(NO_ANSWERS)
    try:
        backend.scrubber(opened.events, opened.quarantine, models)()
        with psycopg.connect(pg_url.partition("?")[0]) as conn:
            vacuumed = {
                row[0]
                for row in conn.execute(
                    "SELECT relname FROM pg_stat_user_tables WHERE schemaname = %s "
                    "AND last_vacuum IS NOT NULL",
                    (backend.schema,),
                )
            }
        assert vacuumed == {"data_keys", "quarantine", "customers_1"}
    finally:
        models.db.close()
        opened.close()


@pytest.fixture
def pg_backend(pg_url: str) -> PostgresBackend:
    return PostgresBackend(pg_url, master_key_file())


def test_sqlite_has_no_other_processes_to_hear(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path)
    opened = backend.open_events(master_key())
    try:
        heard = backend.notifications(
            opened.events, on_events=lambda _: None, on_applied=lambda _: None
        )
        assert heard is None
    finally:
        opened.close()


def test_postgres_hears_appends_and_applied_commits(pg_backend: Backend) -> None:
    opened = pg_backend.open_events(master_key())
    models = pg_backend.open_models(NO_ANSWERS)
    appended, applied = threading.Event(), []
    got_applied = threading.Event()
    heads: list[int | None] = []

    def on_events(position: int | None) -> None:
        heads.append(position)
        appended.set()

    def on_applied(commit: Applied | None) -> None:
        if commit is not None:
            applied.append(commit)
            got_applied.set()

    listener = pg_backend.notifications(
        opened.events, on_events=on_events, on_applied=on_applied
    )
    assert listener is not None
    listener.start()
    try:
        assert listener.connected.wait(5)  # type: ignore[attr-defined]
        # On connecting it reads everything afresh (None); then each NOTIFY
        # says the head after its insert.
        [accepted] = opened.events.append([envelope("e1")])
        assert appended.wait(5)
        deadline = time.monotonic() + 5
        while accepted.position not in heads and time.monotonic() < deadline:
            time.sleep(0.01)
        assert heads[0] is None and heads[-1] == accepted.position
        with models.writing(1) as w:
            w.advance(expected=0, to=1)
            models.db.after_commit_sql(w.c, 1, 1)
        assert got_applied.wait(5)
        assert applied == [Applied(generation=1, position=1)]
    finally:
        listener.stop()
        models.db.close()
        opened.close()


def test_postgres_ignores_other_deployments_commits(pg_url: str) -> None:
    backend = PostgresBackend(pg_url, master_key_file())
    opened = backend.open_events(master_key())
    heard: list[Applied | None] = []
    listener = backend.notifications(
        opened.events, on_events=None, on_applied=heard.append
    )
    assert listener is not None
    try:
        channels = listener._channels  # type: ignore[attr-defined]
        (deliver,) = channels.values()  # no events channel without on_events
        deliver("someone_else:1:5")
        deliver(f"{backend.schema}:2:7")
        deliver("")
        assert heard == [Applied(2, 7), None]
    finally:
        opened.close()


def test_postgres_ignores_other_deployments_appends(pg_url: str) -> None:
    """Every schema of a database shares the recorder's channel: a process
    must not take another deployment's head for its own (its head would
    run ahead, and its own smaller heads would then read as old news)."""
    ours = PostgresBackend(pg_url, master_key_file())
    other_url = pg_url.replace(ours.schema, f"{ours.schema}_other")
    other = PostgresBackend(other_url, master_key_file())
    opened, theirs = ours.open_events(master_key()), other.open_events(master_key())
    heads: list[int | None] = []
    listener = ours.notifications(
        opened.events, on_events=heads.append, on_applied=lambda _: None
    )
    assert listener is not None
    listener.start()
    try:
        assert listener.connected.wait(5)  # type: ignore[attr-defined]
        theirs.events.append([envelope(f"x{i}") for i in range(5)])
        [accepted] = opened.events.append([envelope("e1")])
        deadline = time.monotonic() + 5
        while accepted.position not in heads and time.monotonic() < deadline:
            time.sleep(0.01)
        # None on connecting, then our own head only (theirs reached 5).
        assert heads == [None, accepted.position]
    finally:
        listener.stop()
        opened.close()
        theirs.close()
        with psycopg.connect(pg_url.split("?")[0], autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{other.schema}" CASCADE')  # type: ignore[arg-type]
