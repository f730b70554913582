"""The group committer: concurrent submissions share a transaction, every
answer comes after its batch committed, and a failed batch fails each of
its callers with StoreUnavailable."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from service.bootstrap import Container
from service.eventstore import Appended, StoreUnavailable
from service.groupcommit import GroupCommitter
from service.ingest import Envelope, parse_envelope
from testkit.webhooks import webhook_body


def envelope(event_id: str, customer: str = "c1") -> Envelope:
    return parse_envelope(webhook_body(event_id, customer, amount=1), "Balance changed")


def test_concurrent_submissions_share_batches_and_are_stored(
    container: Container,
) -> None:
    batches: list[int] = []
    gate = threading.Event()  # holds the first batch until all have queued

    def append(envelopes: Sequence[Envelope]) -> list[Appended]:
        gate.wait(5)
        return container.events.append(envelopes)

    async def main() -> list[Appended]:
        committer = GroupCommitter(
            append, max_batch=8, on_commit=lambda a: batches.append(len(a))
        )
        committer.start()
        try:
            ids = [f"g{i}" for i in range(20)]
            tasks = [asyncio.create_task(committer.submit(envelope(i))) for i in ids]
            await asyncio.sleep(0.05)  # all queued behind the held first batch
            gate.set()
            return await asyncio.gather(*tasks)
        finally:
            await committer.stop()

    answers = asyncio.run(main())
    assert [a.status for a in answers] == ["accepted"] * 20
    assert sorted(a.position for a in answers) == list(range(1, 21))
    # Shared transactions, none larger than max_batch: 20 in 3 or 4 commits
    # (the first may be taken before all the others have queued).
    assert sum(batches) == 20 and max(batches) == 8 and len(batches) <= 4
    stored = container.events.read(0, 100)
    assert [e.id for e in stored] == [f"g{i}" for i in range(20)]


def test_duplicates_in_and_across_batches_get_the_first_position(
    container: Container,
) -> None:
    async def main() -> list[Appended]:
        committer = GroupCommitter(container.events.append)
        committer.start()
        try:
            first = await committer.submit(envelope("d1"))
            again = await asyncio.gather(
                committer.submit(envelope("d1")),
                committer.submit(envelope("d2")),
                committer.submit(envelope("d2")),
            )
            return [first, *again]
        finally:
            await committer.stop()

    first, retry, d2, d2_again = asyncio.run(main())
    assert (first.status, retry.status) == ("accepted", "duplicate")
    assert retry.position == first.position
    assert (d2.status, d2_again.status) == ("accepted", "duplicate")
    assert d2_again.position == d2.position != first.position
    assert container.events.head() == 2


def test_a_failed_batch_fails_each_caller_and_the_next_batch_goes_on(
    container: Container,
) -> None:
    calls = 0

    def append(envelopes: Sequence[Envelope]) -> list[Appended]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("disk full")
        return container.events.append(envelopes)

    async def main() -> tuple[Sequence[BaseException | Appended], Appended]:
        committer = GroupCommitter(append)
        committer.start()
        try:
            failed = await asyncio.gather(
                committer.submit(envelope("f1")), return_exceptions=True
            )
            ok = await committer.submit(envelope("f2"))
            return failed, ok
        finally:
            await committer.stop()

    failed, ok = asyncio.run(main())
    assert isinstance(failed[0], StoreUnavailable)
    assert "disk full" in str(failed[0])
    assert ok.status == "accepted"
    assert [e.id for e in container.events.read(0, 10)] == ["f2"]


def test_store_unavailable_passes_through_unchanged(container: Container) -> None:
    down = StoreUnavailable("database is down")

    def append(envelopes: Sequence[Envelope]) -> list[Appended]:
        raise down

    async def main() -> None:
        committer = GroupCommitter(append)
        committer.start()
        try:
            with pytest.raises(StoreUnavailable) as info:
                await committer.submit(envelope("u1"))
            assert info.value is down
        finally:
            await committer.stop()

    asyncio.run(main())


def test_submit_without_a_running_writer_is_store_unavailable(
    container: Container,
) -> None:
    async def main() -> None:
        committer = GroupCommitter(container.events.append)
        with pytest.raises(StoreUnavailable, match="not running"):
            await committer.submit(envelope("n1"))
        committer.start()
        await committer.stop()
        with pytest.raises(StoreUnavailable, match="not running"):
            await committer.submit(envelope("n2"))

    asyncio.run(main())
    assert container.events.head() == 0


def test_a_group_is_committed_whole_and_answered_in_its_order(
    container: Container,
) -> None:
    """The writer process queues an ingress's batch as one group: never
    split across transactions, even one larger than max_batch."""
    batches: list[list[str]] = []
    gate = threading.Event()

    def append(envelopes: Sequence[Envelope]) -> list[Appended]:
        gate.wait(5)
        batches.append([e.id for e in envelopes])
        return container.events.append(envelopes)

    async def main() -> list[list[Appended]]:
        committer = GroupCommitter(append, max_batch=4)
        committer.start()
        try:
            held = asyncio.create_task(committer.submit_many([envelope("h")]))
            await asyncio.sleep(0.05)  # taken: the next groups queue behind it
            groups = [["a1", "a2", "a3"], ["b1", "b2"], ["c1", "c2", "c3", "c4", "c5"]]
            tasks = [
                asyncio.create_task(committer.submit_many([envelope(i) for i in g]))
                for g in groups
            ]
            await asyncio.sleep(0.05)
            gate.set()
            return [await held, *await asyncio.gather(*tasks)]
        finally:
            await committer.stop()

    held, a, b, c = asyncio.run(main())
    # a (3) and b (2) exceed 4 together; c (5) exceeds it alone and goes whole.
    assert batches == [
        ["h"],
        ["a1", "a2", "a3"],
        ["b1", "b2"],
        ["c1", "c2", "c3", "c4", "c5"],
    ]
    positions = [x.position for x in (*held, *a, *b, *c)]
    assert positions == list(range(1, 12))
    assert {x.status for x in (*held, *a, *b, *c)} == {"accepted"}
