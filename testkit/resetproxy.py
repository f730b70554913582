"""A TCP proxy in front of the service that can reset its clients'
connections on demand, the way a load balancer or a crashed host does: the
client's socket reads ECONNRESET (an RST), not an orderly end of stream.

A killed server's kernel sends an RST or a FIN depending on what was still
unread in its socket, so a test that kills the service sees either at
random; this one makes the RST certain.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading

# SO_LINGER on with a zero timeout: close() drops the connection with an RST.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)


class ResetProxy:
    """Forwards 127.0.0.1:<port> (chosen by the kernel) to `target`."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.target = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> ResetProxy:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # On Linux a shutdown, not a close, wakes the thread blocked in accept.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._acceptor.join(timeout=5)
        self._listener.close()
        self.reset()

    def reset(self) -> int:
        """Resets every open client connection; returns how many."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            # Shutting the read sides sends nothing but wakes the pump, whose
            # close then sends the RST; closing here, under its select, would
            # leave it waiting on a dead descriptor.
            with contextlib.suppress(OSError):
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
                client.shutdown(socket.SHUT_RD)
                upstream.shutdown(socket.SHUT_RD)
        return len(pairs)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            try:
                upstream = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()  # the service is down: the client sees it refuse
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            thread = threading.Thread(
                target=self._pump, args=(client, upstream), daemon=True
            )
            thread.start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        """Copies both ways until either side ends or the pair is reset."""
        peer = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as sel:
            for s in peer:
                s.setblocking(True)
                sel.register(s, selectors.EVENT_READ)
            try:
                while True:
                    for key, _ in sel.select():
                        src: socket.socket = key.fileobj  # type: ignore[assignment]
                        data = src.recv(65536)
                        if not data:
                            return
                        peer[src].sendall(data)
            except OSError:
                return  # either side failed
            finally:
                with self._lock:  # an ended pair is not counted by `reset`
                    if (client, upstream) in self._pairs:
                        self._pairs.remove((client, upstream))
                for s in peer:
                    with contextlib.suppress(OSError):
                        s.close()
