"""The store's writer process: appends what ingress processes send it.

SQLite has one writer at a time. Here that writer is a process of its own,
so that ingress processes (one or several, sharing HTTP_PORT) spend their
core on HTTP alone: each sends its requests' envelopes here, and this
process's group committer appends them, many processes' batches in one
transaction, answering each batch once it is durably committed.
"""

from __future__ import annotations

import asyncio
import socket
from typing import cast

import msgspec

from service import logs
from service.eventstore import StoreUnavailable
from service.groupcommit import GroupCommitter
from service.writer.wire import (
    ACCEPTED,
    DUPLICATE,
    Batch,
    Reply,
    frame,
    frames,
    from_wire,
)

log = logs.get(__name__)


class WriterServer:
    """Serves `committer` on the abstract Unix address `where`."""

    def __init__(self, committer: GroupCommitter, where: bytes) -> None:
        self.committer = committer
        self._where = where
        self._server: asyncio.AbstractServer | None = None
        self.peers: set[_Peer] = set()  # ingress processes connected now

    async def start(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # Taken: another writer serves this store. One must not start.
            sock.bind(self._where)
        except OSError:
            sock.close()
            raise
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(
            lambda: _Peer(self), sock=sock, backlog=128
        )

    async def stop(self, grace: float = 5.0) -> None:
        """Stop taking connections, answer the batches received (within
        `grace` seconds), then close the connections: an ingress fails what
        it sends afterwards (503) until a writer serves again."""
        if self._server is not None:
            self._server.close()
        tasks = [t for peer in self.peers for t in peer.tasks]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        for peer in list(self.peers):
            peer.close()


class _Peer(asyncio.Protocol):
    """One ingress process's connection."""

    def __init__(self, server: WriterServer) -> None:
        self._server = server
        self._buffer = bytearray()
        self._decode = msgspec.msgpack.Decoder(Batch).decode
        self._encoder = msgspec.msgpack.Encoder()
        self._transport: asyncio.Transport | None = None
        self.tasks: set[asyncio.Task[None]] = set()  # batches being answered

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses.
        self._transport = cast(asyncio.Transport, transport)
        self._server.peers.add(self)
        log.info("ingress connected", peers=len(self._server.peers))

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.peers.discard(self)
        log.info("ingress disconnected", peers=len(self._server.peers))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            batches = [self._decode(body) for body in frames(self._buffer)]
        except (ValueError, msgspec.DecodeError) as e:
            # Not our protocol: nothing it sent can be trusted, so none of
            # it is stored; the peer's requests are answered 503.
            log.warning("refused a malformed stream", error=str(e))
            assert self._transport is not None
            self._transport.abort()
            return
        loop = asyncio.get_running_loop()
        for batch in batches:
            task = loop.create_task(self._answer(batch))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _answer(self, batch: Batch) -> None:
        try:
            answers = await self._server.committer.submit_many(
                [from_wire(e) for e in batch.events]
            )
            reply = Reply(
                batch.seq,
                [
                    (ACCEPTED if a.status == "accepted" else DUPLICATE, a.position)
                    for a in answers
                ],
            )
        except StoreUnavailable as e:
            reply = Reply(batch.seq, None, str(e) or "the store is unavailable")
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(frame(reply, self._encoder))
