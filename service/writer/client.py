"""An ingress process's side of the writer process (service/writer/server.py).

It stands where the group committer stands in a process that writes itself
(start, stop, submit): every request's envelope joins the batch this turn
of the event loop sends, and its request is answered when the writer's
reply for that batch says it is committed. Batches are pipelined: the
writer may be committing one while the next waits there (IN_FLIGHT).

If the connection breaks, every batch without a reply fails with
StoreUnavailable (503: the sender retries, and a batch that was committed
after all answers "duplicate" then), and the connection is made again.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import msgspec

from service import logs
from service.diskspace import WriteSpace
from service.eventstore import Appended, StoreUnavailable
from service.ingest import Envelope
from service.writer.wire import ACCEPTED, Batch, Event, Reply, frame, frames, to_wire

log = logs.get(__name__)

# Reconnecting: the first wait, doubled up to the last.
FIRST_RETRY, LAST_RETRY = 0.05, 1.0
# Batches sent and not yet answered: one the writer commits, one waiting
# there for the next commit. What arrives meanwhile waits here and goes as
# one batch: a batch costs both processes per message, not per event.
IN_FLIGHT = 2


class RemoteCommitter:
    """The group committer's face (start, submit, stop) over the writer."""

    def __init__(
        self,
        where: bytes,
        space: WriteSpace | None = None,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self._where = where
        # The writer's refusals for lack of space make this process's
        # readiness say so too, as its own append's would.
        self._space = space
        # Told the newest position of each batch the writer committed: an
        # API in this process follows its ingress's commits at once.
        self._on_commit = on_commit
        self._transport: asyncio.Transport | None = None
        self._encoder = msgspec.msgpack.Encoder()
        self._decode = msgspec.msgpack.Decoder(Reply).decode
        # This turn's batch, and the batches sent and not yet answered.
        self._events: list[Event] = []
        self._waiting: list[asyncio.Future[Appended]] = []
        self._flush_due = False
        self._seq = 0
        self._sent: dict[int, list[asyncio.Future[Appended]]] = {}  # by seq
        self._task: asyncio.Task[None] | None = None
        self._lost: asyncio.Event | None = None
        self._stopping = False

    @property
    def connected(self) -> bool:
        return self._transport is not None

    def start(self) -> None:
        self._lost = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._keep_connected())

    async def stop(self, grace: float = 5.0) -> None:
        """Wait (up to `grace` seconds) for the answers to what was sent:
        the HTTP server has stopped taking requests, and those in flight
        are better answered than failed (their retries would only find them
        stored); then close."""
        self._stopping = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while (self._sent or self._events) and self._transport is not None:
            if loop.time() >= deadline:
                break
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._transport is not None:
            self._transport.close()
        self._broken("the ingress is stopping")

    async def submit(self, envelope: Envelope) -> Appended:
        """Resolves once the writer has durably committed the envelope."""
        if self._transport is None:
            raise StoreUnavailable("the store's writer process is not connected")
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self._events.append(to_wire(envelope))
        self._waiting.append(future)
        if not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._flush_due = False
        if len(self._sent) >= IN_FLIGHT and self._transport is not None:
            return  # sent when a reply makes room
        events, waiting = self._events, self._waiting
        self._events, self._waiting = [], []
        if not events:
            return
        if self._transport is None:
            error = StoreUnavailable("the store's writer process is not connected")
            for future in waiting:
                if not future.done():
                    future.set_exception(error)
            return
        self._seq += 1
        self._sent[self._seq] = waiting
        self._transport.write(frame(Batch(self._seq, events), self._encoder))

    def _received(self, buffer: bytearray) -> None:
        for body in frames(buffer):
            reply = self._decode(body)
            waiting = self._sent.pop(reply.seq, None)
            if waiting is None:
                continue  # a batch already failed (the connection broke)
            answers = reply.answers
            if answers is None or len(answers) != len(waiting):
                error = StoreUnavailable(reply.error or "the writer's reply is wrong")
                if self._space is not None:
                    self._space.saw(error)
                for future in waiting:
                    if not future.done():
                        future.set_exception(error)
                continue
            if self._space is not None:
                self._space.wrote()
            if self._on_commit is not None and answers:
                self._on_commit(max(position for _, position in answers))
            for future, (status, position) in zip(waiting, answers, strict=True):
                if not future.done():
                    future.set_result(
                        Appended("accepted", position)
                        if status == ACCEPTED
                        else Appended("duplicate", position)
                    )
        if self._events and not self._flush_due:
            self._flush()

    def _broken(self, why: str) -> None:
        """Fail every batch sent and not answered, and the one waiting to be
        sent: whether a sent one was committed is not known here, and a
        retry is answered correctly either way."""
        self._transport = None
        sent, self._sent = self._sent, {}
        sent[0] = self._waiting  # and the batch not sent yet
        self._events, self._waiting = [], []
        error = StoreUnavailable(why)
        for waiting in sent.values():
            for future in waiting:
                if not future.done():
                    future.set_exception(error)

    async def _keep_connected(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._lost is not None
        delay, said = FIRST_RETRY, False
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, self._where)
                transport, _ = await loop.create_connection(
                    lambda: _Link(self), sock=sock
                )
            except OSError as e:
                sock.close()
                if not said:
                    log.warning("waiting for the store's writer process", error=str(e))
                    said = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, LAST_RETRY)
                continue
            self._transport = transport
            log.info("connected to the store's writer process")
            delay, said = FIRST_RETRY, False
            self._lost.clear()
            await self._lost.wait()

    def _connection_lost(self, exc: Exception | None) -> None:
        if not self._stopping:
            log.warning(
                "lost the store's writer process",
                in_flight=sum(len(w) for w in self._sent.values()),
                error=str(exc) if exc else None,
            )
        self._broken("the connection to the store's writer process broke")
        if self._lost is not None:
            self._lost.set()


class _Link(asyncio.Protocol):
    def __init__(self, owner: RemoteCommitter) -> None:
        self._owner = owner
        self._buffer = bytearray()
        self._transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        try:
            self._owner._received(self._buffer)
        except (ValueError, msgspec.DecodeError) as e:
            log.warning("the writer's stream is malformed", error=str(e))
            self._transport.abort()  # connection_lost fails what is in flight

    def connection_lost(self, exc: Exception | None) -> None:
        self._owner._connection_lost(exc)
