"""The store's writer and the ingress processes' links to it, in one event
loop over a real SQLite store: answers as the in-process append gives
them, batches from several links in one commit, and a broken link failing
only what is in flight, never answering it as stored."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import pytest

from service.backends.sqlite.store import open_sqlite
from service.eventstore import Appended, EventStore, StoreUnavailable
from service.groupcommit import GroupCommitter
from service.ingest import Envelope
from service.writer.client import RemoteCommitter
from service.writer.server import WriterServer
from testkit.keys import master_key
from testkit.webhooks import envelope

Append = Callable[[Sequence[Envelope]], list[Appended]]


class Writer:
    """A writer over `store` (or `append`); `gate`, when cleared, holds
    every append once it has started (`entered`)."""

    def __init__(self, store: EventStore, where: bytes, append: Append | None) -> None:
        self.store, self.where = store, where
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.batches: list[int] = []
        self.committer = GroupCommitter(append or self._append)
        self.server = WriterServer(self.committer, where)

    def _append(self, envelopes: Sequence[Envelope]) -> list[Appended]:
        self.entered.set()
        self.gate.wait(10)
        self.batches.append(len(envelopes))
        return self.store.append(envelopes)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    events, _quarantine, factory = open_sqlite(tmp_path, master_key())
    yield events
    factory.close()


async def until_connected(link: RemoteCommitter) -> RemoteCommitter:
    for _ in range(500):
        if link.connected:
            return link
        await asyncio.sleep(0.01)
    raise AssertionError("the link never connected")


@contextlib.asynccontextmanager
async def serving(
    store: EventStore,
    tmp_path: Path,
    links: int = 1,
    append: Append | None = None,
    on_commit: Callable[[int], None] | None = None,
) -> AsyncIterator[tuple[Writer, list[RemoteCommitter]]]:
    """A started writer on an address of this test's own, and `links`
    connected ingress links to it (told of commits by `on_commit`); all
    stopped at the end."""
    where = f"\0loyalty-test-writer-{os.getpid()}-{tmp_path.name}".encode()
    writer = Writer(store, where, append)
    writer.committer.start()
    await writer.server.start()
    made: list[RemoteCommitter] = []
    try:
        for _ in range(links):
            made.append(RemoteCommitter(where, store.space, on_commit))
            made[-1].start()
            await until_connected(made[-1])
        yield writer, made
    finally:
        writer.gate.set()
        for link in made:
            await link.stop()
        await writer.server.stop()
        await writer.committer.stop()


def test_answers_and_stored_events_are_the_in_process_appends(
    store: EventStore, tmp_path: Path
) -> None:
    async def body() -> None:
        async with serving(store, tmp_path, links=2) as (writer, (a, b)):
            first = [envelope(f"ev-{i}", f"cus-{i % 3}") for i in range(20)]
            answers = await asyncio.gather(
                *(link.submit(e) for link, e in zip([a, b] * 10, first, strict=True))
            )
            assert [x.status for x in answers] == ["accepted"] * 20
            assert sorted(x.position for x in answers) == list(range(1, 21))
            # The same ids again, from the other link: the positions they have.
            again = await asyncio.gather(
                *(link.submit(e) for link, e in zip([b, a] * 10, first, strict=True))
            )
            assert [(x.status, x.position) for x in again] == [
                ("duplicate", x.position) for x in answers
            ]
            stored = {e.id: e for e in store.read(0, 100)}
            for env, answer in zip(first, answers, strict=True):
                assert stored[env.id].position == answer.position
                assert stored[env.id].raw == env.raw
                assert stored[env.id].customer_id == env.customer_id
            # Both links' requests shared transactions: fewer batches than events.
            assert len(writer.batches) < 40

    asyncio.run(body())


def test_each_reply_tells_the_newest_position_it_answers(
    store: EventStore, tmp_path: Path
) -> None:
    """What an API beside the ingress follows (`run --split --writer`): the
    newest position of each committed batch, duplicates' included."""
    told: list[int] = []

    async def body() -> None:
        async with serving(store, tmp_path, on_commit=told.append) as (_, (link,)):
            first = await asyncio.gather(
                *(link.submit(envelope(f"ev-{i}", "cus-1")) for i in range(5))
            )
            assert told and told[-1] == max(a.position for a in first) == 5
            assert told == sorted(told)
            told.clear()
            again = await link.submit(envelope("ev-0", "cus-1"))
            assert again.status == "duplicate" and told == [again.position]

    asyncio.run(body())


def test_a_broken_link_fails_what_is_in_flight_and_a_retry_finds_it_stored(
    store: EventStore, tmp_path: Path
) -> None:
    async def body() -> None:
        async with serving(store, tmp_path) as (writer, (link,)):
            writer.gate.clear()  # the commit is under way when the link breaks
            env = envelope("ev-held", "cus-1")
            pending = asyncio.ensure_future(link.submit(env))
            assert await asyncio.to_thread(writer.entered.wait, 5)
            link._transport.abort()  # type: ignore[union-attr]
            with pytest.raises(StoreUnavailable, match="broke"):
                await pending
            writer.gate.set()  # the writer commits it after all
            await until_connected(link)  # the link connects again on its own
            again = await link.submit(env)
            assert again.status == "duplicate"
            assert [e.id for e in store.read(0, 10)] == ["ev-held"]

    asyncio.run(body())


def test_without_a_writer_each_request_is_refused_at_once(tmp_path: Path) -> None:
    async def body() -> None:
        link = RemoteCommitter(f"\0loyalty-test-nobody-{os.getpid()}".encode())
        link.start()
        try:
            await asyncio.sleep(0.1)
            assert not link.connected
            with pytest.raises(StoreUnavailable, match="not connected"):
                await link.submit(envelope("ev-1", "cus-1"))
        finally:
            await link.stop()

    asyncio.run(body())


def test_a_store_failure_reaches_the_ingress_as_unavailable(
    store: EventStore, tmp_path: Path
) -> None:
    failures = ["database is locked", "database or disk is full"]

    def append(envelopes: Sequence[Envelope]) -> list[Appended]:
        if failures:
            raise StoreUnavailable(failures.pop(0))
        return store.append(envelopes)

    async def body() -> None:
        async with serving(store, tmp_path, append=append) as (_, (link,)):
            space = store.space  # the links' (as the composition root wires it)
            with pytest.raises(StoreUnavailable, match="database is locked"):
                await link.submit(envelope("ev-1", "cus-1"))
            assert not space.full
            # Out of space in the writer: this process's readiness says so
            # until a write succeeds again.
            with pytest.raises(StoreUnavailable, match="disk is full"):
                await link.submit(envelope("ev-1", "cus-1"))
            assert space.full
            assert (await link.submit(envelope("ev-1", "cus-1"))).status == "accepted"
            assert not space.full

    asyncio.run(body())


def test_a_stream_that_is_not_the_protocol_is_cut_off_and_stores_nothing(
    store: EventStore, tmp_path: Path
) -> None:
    async def body() -> None:
        async with serving(store, tmp_path) as (writer, (good,)):
            loop = asyncio.get_running_loop()
            bad = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            bad.setblocking(False)
            await loop.sock_connect(bad, writer.where)
            await loop.sock_sendall(bad, b"\x00\x00\x00\x05hello")
            assert await asyncio.wait_for(loop.sock_recv(bad, 100), 5) == b""
            bad.close()
            assert (await good.submit(envelope("ev-ok", "cus-1"))).status == "accepted"
            assert [e.id for e in store.read(0, 10)] == ["ev-ok"]

    asyncio.run(body())


def test_a_second_writer_for_the_same_store_cannot_start(
    store: EventStore, tmp_path: Path
) -> None:
    async def body() -> None:
        async with serving(store, tmp_path, links=0) as (writer, _):
            with pytest.raises(OSError):
                await Writer(store, writer.where, None).server.start()

    asyncio.run(body())


def test_stopping_an_ingress_answers_what_it_sent_before_it_closes(
    store: EventStore, tmp_path: Path
) -> None:
    async def body() -> None:
        async with serving(store, tmp_path) as (writer, (link,)):
            writer.gate.clear()
            pending = asyncio.ensure_future(link.submit(envelope("ev-late", "cus-1")))
            assert await asyncio.to_thread(writer.entered.wait, 5)
            stopping = asyncio.ensure_future(link.stop())
            await asyncio.sleep(0.1)  # the stop waits for the commit's answer
            assert not pending.done()
            writer.gate.set()
            assert (await pending).status == "accepted"
            await stopping
            assert not link.connected

    asyncio.run(body())
