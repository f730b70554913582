"""An erasure's record is appended by the API, not through a group commit:
the process that appends it must still tell its head (streams follow it) and
its worker (EraseCustomer waits for the worker to apply the record), as a
commit does, instead of leaving both to their next poll."""

from __future__ import annotations

import asyncio
import time

import grpc
from jericommerce.loyalty.v1 import privacy_service_pb2 as ppb
from jericommerce.loyalty.v1 import privacy_service_pb2_grpc as pgrpc

from service.bootstrap import Container, build_service
from service.ingest import parse_envelope
from service.privacy import WORKER_WAIT_SECONDS
from testkit.webhooks import webhook_body

ONE_PROCESS = frozenset({"ingress", "worker", "api"})  # `make run`'s roles


def test_an_erasure_wakes_the_worker_and_the_head_of_its_process(
    container: Container,
) -> None:
    async def scenario() -> tuple[int, int, int, float]:
        service = build_service(container, ONE_PROCESS)
        worker, committer, api = service.worker, service.committer, service.api
        assert worker is not None and committer is not None and api is not None
        # Far beyond EraseCustomer's wait for the worker: only a wake-up can
        # make the worker apply the erasure's record in time.
        worker.poll_interval = 3600.0
        committer.start()
        worker.start()
        await api.server.start()
        try:
            body = webhook_body("e1", "ana", amount=5)
            stored = await committer.submit(parse_envelope(body, "Balance changed"))
            deadline = time.monotonic() + 10
            while worker.status().applied_position < stored.position:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{api.port}") as ch:
                started = time.monotonic()
                erased = await pgrpc.PrivacyServiceStub(ch).EraseCustomer(
                    ppb.EraseCustomerRequest(customer_id="ana"), timeout=30
                )
                took = time.monotonic() - started
            assert erased.erased and erased.position > stored.position
            return (
                erased.position,
                worker.status().applied_position,
                service.head.position,
                took,
            )
        finally:
            await api.server.stop(None)
            await asyncio.to_thread(api.rebuilds.stop)
            worker.stop()
            await committer.stop()

    position, applied, head, took = asyncio.run(scenario())
    # Applied when EraseCustomer answered: it did not give up waiting.
    assert applied >= position
    assert head >= position
    assert took < WORKER_WAIT_SECONDS
