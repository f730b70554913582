"""The PostgreSQL worker lease checks its session at most every heartbeat,
and still notices a lost session, so a standby can take over."""

from __future__ import annotations

import time

import psycopg
import pytest

from service.backends.postgres.lease import PostgresLease

pytestmark = pytest.mark.postgres


def _backend_pid(lease: PostgresLease) -> int:
    conn = lease._conn
    assert conn is not None
    return int(conn.info.backend_pid)


def test_a_lost_session_is_noticed_after_the_heartbeat(pg_url: str) -> None:
    first = PostgresLease(pg_url, heartbeat=0.2)
    standby = PostgresLease(pg_url, heartbeat=0.2)
    try:
        assert first.acquire()
        assert not standby.acquire()
        pid = _backend_pid(first)
        base = pg_url.partition("?")[0]
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        # The session (and with it the advisory lock) is gone at once.
        deadline = time.monotonic() + 5
        while not standby.acquire():
            assert time.monotonic() < deadline, "the standby never took over"
            time.sleep(0.05)
        time.sleep(0.25)  # past the heartbeat: the next check asks the server
        assert not first.acquire()  # lost, and the standby holds it now
        assert not first.acquire()
    finally:
        first.release()
        standby.release()


def test_within_the_heartbeat_no_statement_is_sent(pg_url: str) -> None:
    lease = PostgresLease(pg_url, heartbeat=60)
    try:
        assert lease.acquire()
        conn = lease._conn
        assert conn is not None
        # A closed socket would fail any statement; within the heartbeat
        # the held lease is answered from memory.
        sent: list[object] = []
        real = conn.execute
        conn.execute = lambda *a, **k: sent.append(a) or real(*a, **k)  # type: ignore[method-assign]
        for _ in range(100):
            assert lease.acquire()
        assert sent == []
    finally:
        lease.release()
