"""The `eventsourcing` library's own recorder test cases, run against our
recorder subclasses: KeyedRecorder (SQLite: a multi-row insert of ours in
place of the library's) and FailFastRecorder (PostgreSQL: the library's
insert without its retries). They must still be the library's recorders in
every way its contract says. (AggregateRecorderTestCase is for recorders
that return no notification ids; an application recorder returns them.)"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.tests.persistence import (
    ApplicationRecorderTestCase,
    NonInterleavingNotificationIDsBaseCase,
)

from service.adapters.eventsourcing import run_on_new_connections
from service.backends.postgres.store import (
    FailFastRecorder,
    ensure_schema,
    library_env,
)
from service.backends.sqlite.store import PRAGMAS, KeyedRecorder


def join_readers(before: set[threading.Thread]) -> None:
    """The library's concurrent cases stop their reader threads without
    joining them: wait for them before closing the connections they use."""
    for thread in set(threading.enumerate()) - before:
        if not thread.daemon:  # (connection pools' workers are daemons)
            thread.join(30)


class SqliteRecorder:
    """A KeyedRecorder on a fresh file per test, as the service opens it."""

    datastores: list[SQLiteDatastore]

    def setUp(self) -> None:
        self._dir = tempfile.TemporaryDirectory()
        self.datastores = []
        self._threads = set(threading.enumerate())

    def tearDown(self) -> None:
        join_readers(self._threads)
        for datastore in self.datastores:
            datastore.close()
        self._dir.cleanup()

    def create_recorder(self) -> KeyedRecorder:
        path = Path(self._dir.name) / f"events{len(self.datastores)}.sqlite"
        datastore = SQLiteDatastore(str(path), lock_timeout=10)
        run_on_new_connections(datastore, PRAGMAS)
        self.datastores.append(datastore)
        recorder = KeyedRecorder(datastore)
        recorder.create_table()
        return recorder


class PostgresRecorder:
    """A FailFastRecorder in the test's fresh schema. The pool is sized for
    the cases' writer and reader threads (the service's fails fast)."""

    pg_url: str
    datastores: list[PostgresDatastore]

    @pytest.fixture(autouse=True)
    def _schema(self, pg_url: str) -> None:
        self.pg_url = pg_url

    def setUp(self) -> None:
        self.datastores = []
        self._threads = set(threading.enumerate())

    def tearDown(self) -> None:
        join_readers(self._threads)
        for datastore in self.datastores:
            datastore.close()

    def create_recorder(self) -> FailFastRecorder:
        env = library_env(self.pg_url)
        ensure_schema(env)
        datastore = PostgresDatastore(
            env["POSTGRES_DBNAME"],
            env["POSTGRES_HOST"],
            env["POSTGRES_PORT"],
            env["POSTGRES_USER"],
            env["POSTGRES_PASSWORD"],
            schema=env["POSTGRES_SCHEMA"],
            pool_size=12,
            max_overflow=12,
            max_waiting=100,
        )
        self.datastores.append(datastore)
        recorder = FailFastRecorder(datastore)
        recorder.create_table()
        return recorder


class TestKeyedRecorder(SqliteRecorder, ApplicationRecorderTestCase[Any]):
    pass


class TestKeyedRecorderNonInterleaving(
    SqliteRecorder, NonInterleavingNotificationIDsBaseCase
):
    pass


class TestFailFastRecorder(PostgresRecorder, ApplicationRecorderTestCase[Any]):
    pass


class TestFailFastRecorderNonInterleaving(
    PostgresRecorder, NonInterleavingNotificationIDsBaseCase
):
    pass


def test_the_library_cases_are_the_ones_we_run() -> None:
    """A case the library adds in an upgrade runs here too (these classes
    inherit every test_ method); this only guards the import above."""
    assert "test_concurrent_no_conflicts" in dir(ApplicationRecorderTestCase)
    assert "test_insert_select" in dir(ApplicationRecorderTestCase)
