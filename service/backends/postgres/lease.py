"""Who may apply projections on PostgreSQL: one worker in the deployment."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import psycopg


class PostgresLease:
    """Only one projection worker applies at a time: a session-level advisory
    lock held on a dedicated connection. If the holder dies, PostgreSQL ends
    its session and frees the lock, and a standby's next try succeeds."""

    def __init__(
        self,
        database_url: str,
        key: str = "loyalty-projection-worker",
        *,
        heartbeat: float = 0.5,
    ) -> None:
        url = urlsplit(database_url)
        schema = parse_qs(url.query).get("schema", ["public"])[0]
        self._conninfo = urlunsplit(url._replace(query=""))
        # One lock per schema, so separate deployments never block each other.
        self._key = f"{key}:{schema}"
        self._conn: psycopg.Connection[Any] | None = None
        self._heartbeat = heartbeat
        self._checked = 0.0

    def acquire(self) -> bool:
        """True while we hold the lease; tries to take it if we do not."""
        try:
            if self._conn is not None and not self._conn.closed:
                # Still our session, still held: asked at most every
                # `heartbeat` seconds, not on every wake-up (a busy worker
                # wakes hundreds of times a second). The lease only keeps a
                # standby idle; a second applier is stopped by the read
                # models' position fence (StalePosition), not by this check.
                now = time.monotonic()
                if now - self._checked >= self._heartbeat:
                    self._conn.execute("SELECT 1")
                    self._checked = now
                return True
            self._conn = psycopg.connect(
                self._conninfo, autocommit=True, connect_timeout=5
            )
            row = self._conn.execute(
                "SELECT pg_try_advisory_lock(hashtext(%s))", (self._key,)
            ).fetchone()
            if row and row[0]:
                self._checked = time.monotonic()
                return True
            self.release()
            return False
        except psycopg.Error:
            self.release()
            return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
