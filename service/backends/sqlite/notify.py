"""Processes on one DATA_DIR telling each other of commits (`run --split`).

SQLite has no LISTEN/NOTIFY, so the committing process says it: one Unix
datagram per commit, carrying the new position, to an address in the
abstract namespace named after DATA_DIR (it vanishes with its process, so
a SIGKILL leaves nothing stale behind). Channel "events": the front's
commits, heard by the projector; channel "applied": the projector's
applied batches, heard by the API. bench/notify_micro.py measured this
against polling `PRAGMA data_version` (docs/performance.md).

Datagrams are hints, never the truth: a lost one (nobody bound yet, a full
queue, a restarting peer) only delays, because the listener reads the
truth from the database at least every `poll_interval` without one, and
the projection worker polls on its own as well.
"""

from __future__ import annotations

import errno
import hashlib
import selectors
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from service import logs

log = logs.get(__name__)
EVENTS, APPLIED = "events", "applied"
# A listener that hears nothing for this long reads the database anyway.
POLL_INTERVAL = 1.0
# Send errors that only mean "nobody hears now": the peer is not bound
# (not started, restarting) or its queue is full (it is busy reading).
_NOBODY = {errno.ECONNREFUSED, errno.ENOENT, errno.EAGAIN, errno.ENOBUFS}


def address(data_dir: Path, channel: str) -> bytes:
    """The abstract address of `channel` for the deployment in `data_dir`."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:24]
    return f"\0loyalty-{digest}-{channel}".encode()


class Link:
    """Sends this process's positions on some channels and hears others'
    on others: one thread calls `on[channel](position)` with the newest
    position of each burst of datagrams, or `on[channel](None)` (read the
    database) once `poll_interval` passes without one."""

    def __init__(
        self,
        data_dir: Path,
        on: Mapping[str, Callable[[int | None], None]],
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        # Resolved once: a send is a hot path (one per commit).
        self._to = {c: address(data_dir, c) for c in (EVENTS, APPLIED)}
        self._on = dict(on)
        self._poll = poll_interval
        # Sockets are opened on first use, not here: a service built and
        # never started (a test, a failed start) holds none to leak.
        self._out: socket.socket | None = None
        self._stop = threading.Event()
        # Wakes the thread out of its wait at `stop` (made by `start`).
        self._wakers: tuple[socket.socket, socket.socket] | None = None
        self._thread = threading.Thread(
            target=self._run, name="sqlite-link", daemon=True
        )
        self.bound = threading.Event()  # every channel heard is bound
        self.sent = self.dropped = 0

    def send(self, channel: str, position: int) -> None:
        """Tell `channel`'s listener that `position` is reached. Never blocks
        or raises: a datagram nobody hears is harmless (see the module)."""
        try:
            if self._out is None:
                self._out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._out.setblocking(False)  # a send never waits
            self._out.sendto(b"%d" % position, self._to[channel])
            self.sent += 1
        except OSError as e:
            if e.errno not in _NOBODY:
                log.warning("could not notify", channel=channel, error=str(e))
            self.dropped += 1

    def start(self) -> None:
        self._wakers = socket.socketpair()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._wakers is not None:  # a sender alone never starts it
            self._wakers[0].send(b"x")
            self._thread.join(5)
        for sock in (self._out, *(self._wakers or ())):
            if sock is not None:
                sock.close()

    def _run(self) -> None:
        with selectors.DefaultSelector() as sel:
            assert self._wakers is not None
            sel.register(self._wakers[1], selectors.EVENT_READ, None)
            for channel in self._on:
                sock = self._bind(channel)
                if sock is not None:
                    sel.register(sock, selectors.EVENT_READ, channel)
            self.bound.set()
            try:
                self._loop(sel)
            finally:
                for key in list(sel.get_map().values()):
                    sel.unregister(key.fileobj)
                    if key.data is not None:
                        key.fileobj.close()  # type: ignore[union-attr]

    def _bind(self, channel: str) -> socket.socket | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(self._to[channel])
        except OSError as e:
            # Another process hears this channel (two API processes on one
            # DATA_DIR): this one reads the database every poll instead.
            log.warning(
                "cannot hear notifications; polling instead",
                channel=channel,
                error=str(e),
                poll_interval_s=self._poll,
            )
            sock.close()
            return None
        sock.setblocking(False)
        return sock

    def _loop(self, sel: selectors.BaseSelector) -> None:
        while not self._stop.is_set():
            ready = sel.select(timeout=self._poll)
            for key, _ in ready:
                if key.data is None:  # the waker: stopping
                    return
                position = drain(key.fileobj)  # type: ignore[arg-type]
                if position is not None:
                    self._call(key.data, position)
            if not ready and not self._stop.is_set():
                # A quiet interval: whatever was missed, read it now.
                for channel in self._on:
                    self._call(channel, None)

    def _call(self, channel: str, position: int | None) -> None:
        try:
            self._on[channel](position)
        except Exception as e:  # the thread must outlive a bad callback
            log.warning("notification callback failed", channel=channel, error=str(e))


def drain(sock: socket.socket) -> int | None:
    """The highest position among the datagrams queued on `sock` (None if
    none parse): one callback per burst, however busy the sender."""
    best: int | None = None
    while True:
        try:
            data = sock.recv(32)
        except (BlockingIOError, InterruptedError):
            return best
        try:
            position = int(data)
        except ValueError:
            continue  # not ours: ignore, never crash the listener
        best = position if best is None else max(best, position)
