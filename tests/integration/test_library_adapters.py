"""The adapters to library internals (service/adapters/): each fails here
first when the pinned library changes or a private name it uses goes. The
behaviour they exist for is tested where it is used (the ingress's
timeouts, the recorders' contract, the gRPC hardening)."""

from __future__ import annotations

import inspect
import re
import sqlite3
import tomllib
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from grpc_health.v1 import health, health_pb2_grpc

from service import adapters
from service.adapters import eventsourcing as es_adapter
from service.adapters import grpc as grpc_adapter
from service.adapters import sanic as sanic_adapter
from service.backends.postgres.store import FailFastRecorder, open_postgres
from service.backends.sqlite.store import open_sqlite
from testkit.keys import master_key

ROOT = Path(__file__).resolve().parents[2]


def pins() -> dict[str, str]:
    """Exact pins of pyproject.toml, by distribution name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = {}
    for spec in project["dependencies"]:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^]]*\])?==([^;\s]+)", spec)
        if m:
            found[m.group(1).lower()] = m.group(3)
    return found


@pytest.mark.parametrize(
    ("package", "module"),
    [
        ("eventsourcing", es_adapter),
        ("sanic", sanic_adapter),
        ("grpcio", grpc_adapter),
        ("grpcio-tools", grpc_adapter),
    ],
)
def test_each_adapter_was_written_for_the_pinned_version(
    package: str, module: Any
) -> None:
    # A changed pin fails here: re-check what the adapter's docstring lists,
    # then move its WRITTEN_FOR.
    assert pins()[package] == module.WRITTEN_FOR


def test_the_installed_libraries_have_what_the_adapters_use() -> None:
    assert adapters.problems() == []


def test_sanic_still_speaks_the_texts_we_match() -> None:
    from sanic import app
    from sanic.handlers import error
    from sanic.http import http1

    http = inspect.getsource(http1)
    assert 'method="NONE"' in http  # AnswerableRequest's stand-in request
    assert "Transport is closed." in http
    assert "uri: %s" in inspect.getsource(error)
    assert "The error response will not be sent" in inspect.getsource(app)
    assert "call_later" in inspect.getsource(sanic_adapter.HttpProtocol)


# -- eventsourcing -------------------------------------------------------------


def test_sqlite_connections_run_our_pragmas(tmp_path: Path) -> None:
    events, _quarantine, factory = open_sqlite(tmp_path, master_key())
    try:
        with events.recorder.datastore.transaction(commit=False) as c:  # type: ignore[attr-defined]
            c.execute("PRAGMA synchronous")
            assert c.fetchone()[0] == 2  # FULL
            c.execute("PRAGMA secure_delete")
            assert c.fetchone()[0] == 1
            c.execute("PRAGMA temp_store")
            assert c.fetchone()[0] == 2  # MEMORY
            c.execute("PRAGMA wal_autocheckpoint")
            assert c.fetchone()[0] == 10_000
    finally:
        factory.close()


def stored(n: int = 1) -> list[StoredEvent]:
    import uuid

    return [StoredEvent(uuid.uuid4(), 1, "topic", b"state") for _ in range(n)]


def test_sqlite_hook_runs_in_the_insert_transaction(tmp_path: Path) -> None:
    events, _quarantine, factory = open_sqlite(tmp_path, master_key())
    recorder = events.recorder
    seen: list[Any] = []
    try:
        ids = recorder.insert_events(stored(2), verify=seen.append)
        assert ids is not None and len(ids) == 2 and len(seen) == 1

        def refuse(c: Any) -> None:
            raise RuntimeError("refused")

        with pytest.raises(RuntimeError):
            recorder.insert_events(stored(), verify=refuse)
        assert recorder.max_notification_id() == max(ids)  # rolled back
    finally:
        factory.close()


def test_postgres_hook_runs_in_the_insert_transaction(pg_url: str) -> None:
    events, _quarantine, factory = open_postgres(pg_url, master_key())
    recorder = events.recorder
    seen: list[Any] = []
    try:
        ids = recorder.insert_events(stored(2), verify=seen.append)
        assert ids is not None and len(ids) == 2 and len(seen) == 1

        def refuse(curs: Any) -> None:
            raise RuntimeError("refused")

        with pytest.raises(RuntimeError):
            recorder.insert_events(stored(), verify=refuse)
        assert recorder.max_notification_id() == max(ids)
    finally:
        factory.close()


def test_postgres_insert_notifies_and_keeps_batch_order(pg_url: str) -> None:
    import psycopg

    events, _quarantine, factory = open_postgres(pg_url, master_key())
    recorder = events.recorder
    channel = es_adapter.notify_channel(recorder)
    try:
        with psycopg.connect(pg_url.split("?")[0], autocommit=True) as listener:
            listener.execute(f'LISTEN "{channel}"')
            batch = [
                StoredEvent(e.originator_id, 1, f"t{i}", bytes([i]) * (i + 1))
                for i, e in enumerate(stored(5))
            ]
            ids = recorder.insert_events(batch)
            [note] = listener.notifies(timeout=5, stop_after=1)
        assert ids is not None and list(ids) == sorted(ids)
        # The NOTIFY says the schema and the head after the insert, and it
        # reads as them; a payload without a schema says neither.
        schema = recorder.datastore.schema
        assert note.payload == f"{schema}:{max(ids)}"
        assert es_adapter.notified_head(note.payload) == (schema, max(ids))
        assert es_adapter.notified_head("") == (None, None)
        assert es_adapter.notified_head(str(max(ids))) == (None, None)
        rows = events.index.read_positions(list(ids))
        assert [(t, s) for _p, t, s in rows] == [(e.topic, e.state) for e in batch]
        assert events.index.positions([e.originator_id for e in batch]) == {
            e.originator_id: i for e, i in zip(batch, ids, strict=True)
        }
        with pytest.raises(IntegrityError):
            recorder.insert_events([*stored(1), batch[2]])
        assert recorder.max_notification_id() == max(ids)
    finally:
        factory.close()


def test_a_changed_library_insert_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def reordered(self: Any, curs: Any, stored_events: Any, **kwargs: Any) -> None:
        self._notify_channel(curs)
        self._lock_table(curs)
        super(PostgresApplicationRecorder, self)._insert_stored_events(
            curs, stored_events, **kwargs
        )

    monkeypatch.setattr(PostgresApplicationRecorder, "_insert_stored_events", reordered)
    assert any("_insert_stored_events" in p for p in es_adapter.problems())


def test_the_postgres_recorder_tries_once(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    events, _quarantine, factory = open_postgres(pg_url, master_key())
    recorder = events.recorder
    assert isinstance(recorder, FailFastRecorder)
    tries = []

    def down(*args: Any, **kwargs: Any) -> Any:
        tries.append(1)
        raise OperationalError("the database is down")

    monkeypatch.setattr(recorder.datastore, "get_connection", down)
    try:
        for call in (
            lambda: recorder.insert_events(stored()),
            lambda: recorder.max_notification_id(),
            lambda: recorder.select_notifications(None, 10),
        ):
            tries.clear()
            with pytest.raises(OperationalError):
                call()
            assert tries == [1]  # the library's @retry would try ten times
    finally:
        monkeypatch.undo()
        factory.close()
    assert FailFastRecorder.insert_events is not (
        PostgresApplicationRecorder.insert_events
    )


def test_pooled_connections_are_pinged_only_after_idling(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    import psycopg
    from psycopg_pool import ConnectionPool

    events, _quarantine, factory = open_postgres(pg_url, master_key())
    pings: list[int] = []
    real = ConnectionPool.check_connection

    def counted(conn: Any) -> None:
        pings.append(conn.info.backend_pid)
        real(conn)

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(counted))
    try:
        es_adapter.ping_when_idle(factory.datastore, 0.3)
        recorder = events.recorder
        # The pool lends its connections in turn: each is pinged once, the
        # first time it is lent out under this check...
        for _ in range(20):
            recorder.max_notification_id()
        first = len(pings)
        assert 1 <= first <= factory.datastore.pool.max_size
        assert len(set(pings)) == first
        for _ in range(20):  # ...and not while lent out within the idle time
            recorder.max_notification_id()
        assert len(pings) == first
        # The server ends the pooled session; after the idle time the
        # checkout's ping notices, and the pool hands out a fresh one.
        with psycopg.connect(pg_url.partition("?")[0], autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pings[0],))
        time.sleep(0.4)
        assert recorder.max_notification_id() is None
        assert len(pings) >= 2 and pings[-1] != pings[0]
    finally:
        monkeypatch.undo()
        factory.close()


def test_without_retries_refuses_an_undecorated_method() -> None:
    def plain() -> None: ...

    with pytest.raises(AttributeError):
        es_adapter.without_retries(plain)


def test_run_on_new_connections_keeps_the_pool_settings(tmp_path: Path) -> None:
    from eventsourcing.sqlite import SQLiteDatastore

    datastore = SQLiteDatastore(str(tmp_path / "x.sqlite"), lock_timeout=7)
    es_adapter.run_on_new_connections(datastore, ["PRAGMA user_version=5"])
    try:
        assert datastore.pool.lock_timeout == 7
        with datastore.transaction(commit=False) as c:
            c.execute("PRAGMA user_version")
            assert c.fetchone()[0] == 5
    finally:
        datastore.close()
    assert sqlite3.connect(tmp_path / "x.sqlite").execute(
        "PRAGMA user_version"
    ).fetchone() == (5,)


# -- grpc ------------------------------------------------------------------------


class Recording:
    def __init__(self) -> None:
        self.generic: list[Any] = []
        self.registered: dict[str, dict[str, Any]] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self.generic.extend(handlers)

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, Any]
    ) -> None:
        self.registered[service] = handlers


def test_generated_registration_goes_through_the_stand_in() -> None:
    target = Recording()
    marked: dict[str, Any] = {}

    def mark(service: str, handlers: dict[str, Any]) -> dict[str, Any]:
        marked.update(handlers)
        return {name: ("rewritten", h) for name, h in handlers.items()}

    health_pb2_grpc.add_HealthServicer_to_server(
        health.HealthServicer(), grpc_adapter.StandInServer(target, mark)
    )
    service = "grpc.health.v1.Health"
    assert set(marked) >= {"Check", "Watch"}
    assert target.registered[service] == {
        name: ("rewritten", h) for name, h in marked.items()
    }
    assert len(target.generic) == 1  # the rewritten handlers, generic kind
    for handler in marked.values():
        for field in ("unary_unary", "unary_stream", "request_deserializer"):
            assert hasattr(handler, field)


def test_sanic_still_reads_port_0_as_its_default() -> None:
    """Why `start_server` binds port 0 itself: were this to change, the
    adapter's own bind could go."""
    from sanic import Sanic

    assert Sanic.get_address("127.0.0.1", 0) == ("127.0.0.1", 8000)


def test_port_0_is_any_free_port_even_with_8000_taken() -> None:
    """A process's probes with METRICS_PORT unset (`run --split`'s projector,
    the store's writer process) listen on a port of their own: with Sanic's
    default port taken (by another such process), they start all the same."""
    import contextlib
    import socket
    import urllib.request

    from service.probes import probe_app
    from testkit.sanic_thread import serving

    async def ready() -> dict[str, bool]:
        return {"store": True}

    with contextlib.ExitStack() as stack:
        taken = stack.enter_context(socket.socket())
        with contextlib.suppress(OSError):  # else something else holds it: as good
            taken.bind(("127.0.0.1", 8000))
            taken.listen()
        # `serving` starts the app with `start_server(app, "127.0.0.1", 0)`,
        # in Sanic's test mode: outside it, each start rewrites Sanic's
        # protocol methods in place, which the next app started in the same
        # process cannot do again (a service process starts one app; a test
        # process starts many).
        port = stack.enter_context(serving(probe_app(ready, lambda: b"")))
        answer = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", None, 5)
        assert answer.status == 200
    assert port not in (0, 8000)
    a, b = sanic_adapter.any_free_port("127.0.0.1"), sanic_adapter.any_free_port(None)
    with a, b:
        assert a.getsockname()[1] != b.getsockname()[1]
