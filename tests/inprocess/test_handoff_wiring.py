"""Which processes hand their committed events to their own worker: only one
that both commits (the ingress) and projects (the worker)."""

from __future__ import annotations

import asyncio
import time

from service.bootstrap import Container, build_service
from service.eventstore import EventStore
from service.handoff import HandOff
from service.ingest import parse_envelope
from testkit.webhooks import webhook_body


def test_a_worker_without_the_ingress_reads_the_store(container: Container) -> None:
    async def built() -> object:
        service = build_service(container, frozenset({"worker"}))
        if service.listener is not None:  # built, never started: its sockets
            service.listener.stop()
        assert service.worker is not None
        return service.worker.source

    assert type(asyncio.run(built())) is EventStore


def test_the_worker_beside_the_ingress_takes_what_it_committed(
    container: Container,
) -> None:
    async def scenario() -> tuple[int, int, int]:
        service = build_service(container, frozenset({"ingress", "worker"}))
        worker, committer = service.worker, service.committer
        assert worker is not None and committer is not None
        assert isinstance(worker.source, HandOff)
        committer.start()
        worker.start()
        try:
            deadline = time.monotonic() + 10
            while not worker.status().leader:  # held only while applying
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            answers = await asyncio.gather(
                *(
                    committer.submit(
                        parse_envelope(
                            webhook_body(f"e{n}", f"c{n % 2}", amount=n),
                            "Balance changed",
                        )
                    )
                    for n in range(5)
                )
            )
            head = max(a.position for a in answers)
            while worker.status().applied_position < head:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            return head, worker.source.taken, worker.source.held()
        finally:
            worker.stop()
            await committer.stop()
            if service.listener is not None:
                service.listener.stop()

    head, taken, held = asyncio.run(scenario())
    assert head == 5
    # Every event came from the hand-off, unless the worker read it before
    # its commit was handed over (then from the store).
    assert 0 < taken <= 5 and held == 0
    assert container.models.applied_position() == 5
