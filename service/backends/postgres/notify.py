"""LISTEN/NOTIFY across processes: new events and applied positions.

The event store's recorder NOTIFYs its channel on every insert with
"schema:head"; the read models' commits NOTIFY `loyalty_applied` with
"schema:generation:position". Both channels are shared by every schema of
a database, so each payload names its schema.
One thread per process listens and calls back; it reconnects after an
outage, and callers also keep a slow poll, so a lost notification only
delays, never loses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from urllib.parse import parse_qs, urlsplit, urlunsplit

import psycopg
from psycopg import Notify, sql

from service import logs

log = logs.get(__name__)


class Listener:
    def __init__(
        self,
        database_url: str,
        channels: dict[str, Callable[[str], None]],
    ) -> None:
        url = urlsplit(database_url)
        self.schema = parse_qs(url.query).get("schema", ["public"])[0]
        self._conninfo = urlunsplit(url._replace(query=""))
        self._channels = channels
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)
        self.connected = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._conninfo, autocommit=True, connect_timeout=5
                ) as conn:
                    for channel in self._channels:
                        conn.execute(
                            sql.SQL("LISTEN {}").format(sql.Identifier(channel))
                        )
                    self.connected.set()
                    backoff = 0.2
                    # Anything may have happened while we were not listening.
                    for callback in self._channels.values():
                        callback("")
                    while not self._stop.is_set():
                        burst = list(conn.notifies(timeout=0.5, stop_after=1))
                        if burst:  # and whatever else has arrived meanwhile
                            burst += conn.notifies(timeout=0)
                        for channel, payload in coalesce(burst):
                            self._channels[channel](payload)
            except psycopg.Error as e:
                self.connected.clear()
                log.warning("LISTEN connection lost, retrying", error=type(e).__name__)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)


def coalesce(notes: Iterable[Notify]) -> list[tuple[str, str]]:
    """One callback per channel and payload prefix, with the last payload: a
    busy ingress commits (and NOTIFYs) hundreds of times a second, and each
    callback may query the database, in every listening process. Payloads
    are "schema:head" (events) or "schema:generation:position", whose
    positions only grow, so the last one says everything the earlier ones
    did."""
    last: dict[tuple[str, str], str] = {}
    for note in notes:
        key = (note.channel, note.payload.rpartition(":")[0])
        last.pop(key, None)  # keep arrival order of the last of each
        last[key] = note.payload
    return [(channel, payload) for (channel, _), payload in last.items()]
