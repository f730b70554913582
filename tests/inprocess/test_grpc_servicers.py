"""The gRPC servicers in this process: a grpc.aio server on port 0 over the
real SQLite stores the composition root opens, a projection worker applied
by hand, and an aio client. Statuses, paging and read-your-writes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc
from jericommerce.loyalty.v1 import event_pb2
from jericommerce.loyalty.v1 import event_service_pb2 as epb
from jericommerce.loyalty.v1 import event_service_pb2_grpc as egrpc
from jericommerce.loyalty.v1 import projection_service_pb2 as ppb
from jericommerce.loyalty.v1 import projection_service_pb2_grpc as pgrpc

from projections.worker import ProjectionWorker
from service.bootstrap import Container
from service.ingest import parse_envelope
from service.positions import PositionWatch
from service.reads import CustomerReads
from service.rebuilds import Rebuilds
from service.rpc.admin import AdminPolicy
from service.rpc.customers import CustomerServicer
from service.rpc.events import EventServicer
from service.rpc.limits import Admission
from service.rpc.privacy import PrivacyServicer
from service.rpc.projection_control import ProjectionServicer
from service.rpc.server import Health, Servicers, create_server
from testkit.webhooks import webhook_body


@dataclass
class Api:
    container: Container
    worker: ProjectionWorker
    head: PositionWatch
    customers: cgrpc.CustomerServiceAsyncStub
    events: egrpc.EventServiceAsyncStub
    projections: pgrpc.ProjectionServiceAsyncStub

    def store(self, event_type: str, event_id: str, customer: str, **props: Any) -> int:
        body = webhook_body(event_id, customer, **props)
        (appended,) = self.container.events.append([parse_envelope(body, event_type)])
        self.head.advance(self.container.events.head())
        return appended.position

    async def apply(self) -> None:
        await asyncio.to_thread(self.worker.run_once)


@pytest.fixture
def serve(container: Container) -> Callable[[Callable[[Api], Awaitable[None]]], None]:
    """Runs a scenario against a started server, then stops everything."""

    def run(scenario: Callable[[Api], Awaitable[None]]) -> None:
        async def main() -> None:
            loop = asyncio.get_running_loop()
            head, applied = PositionWatch(loop), PositionWatch(loop)
            worker = ProjectionWorker(
                container.events, container.models, on_applied=applied.advance
            )
            rebuilds = Rebuilds(container.events, container.models)
            admin = AdminPolicy(mtls=False, admins=())
            servicers = Servicers(
                customers=CustomerServicer(
                    CustomerReads(container.models, container.events),
                    applied,
                    inline_reads=True,
                ),
                events=EventServicer(container.events, head),
                projections=ProjectionServicer(
                    container.events,
                    container.models,
                    rebuilds,
                    container.models.applied_position,
                    admin,
                ),
                privacy=PrivacyServicer(
                    container.privacy(), applied, admin, head.advance
                ),
            )
            settings = container.settings
            admission = Admission(
                max_calls=settings.grpc_max_calls,
                max_streams=settings.grpc_max_streams,
                max_streams_per_peer=settings.grpc_max_streams_per_peer,
            )
            server, port = create_server(
                "127.0.0.1:0", None, servicers, Health(), admission, container.metrics
            )
            await server.start()
            try:
                async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                    await scenario(
                        Api(
                            container,
                            worker,
                            head,
                            cgrpc.CustomerServiceStub(channel),
                            egrpc.EventServiceStub(channel),
                            pgrpc.ProjectionServiceStub(channel),
                        )
                    )
            finally:
                await server.stop(None)
                await asyncio.to_thread(rebuilds.stop)

        asyncio.run(main())

    return run


async def code_of(call: Awaitable[object]) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code()


def test_customer_reads_and_their_errors(serve: Callable[..., None]) -> None:
    async def scenario(api: Api) -> None:
        api.store("Customer created", "e1", "ana", email="ana@x.com", firstName="Ana")
        api.store("Balance changed", "e2", "ana", amount=30)
        last = api.store("Balance changed", "e3", "ana", amount=-5)
        await api.apply()
        got = await api.customers.GetCustomer(
            cpb.GetCustomerRequest(customer_id="ana", min_position=last), timeout=5
        )
        assert (got.first_name, got.points_balance, got.event_count) == ("Ana", 25, 3)
        found = await api.customers.LookupCustomer(
            cpb.LookupCustomerRequest(email="ana@x.com"), timeout=5
        )
        assert found.customer_id == "ana"
        changes = await api.customers.ListBalanceChanges(
            cpb.ListBalanceChangesRequest(customer_id="ana"), timeout=5
        )
        assert [c.amount for c in changes.balance_changes] == [30, -5]
        history = await api.customers.ListCustomerEvents(
            cpb.ListCustomerEventsRequest(customer_id="ana", page_size=2), timeout=5
        )
        assert [e.id for e in history.events] == ["e1", "e2"]
        assert history.next_page_token

        get = api.customers.GetCustomer
        assert (
            await code_of(get(cpb.GetCustomerRequest(customer_id="nobody"), timeout=5))
            == grpc.StatusCode.NOT_FOUND
        )
        assert (
            await code_of(get(cpb.GetCustomerRequest(customer_id=" "), timeout=5))
            == grpc.StatusCode.INVALID_ARGUMENT
        )
        assert (
            await code_of(
                get(
                    cpb.GetCustomerRequest(customer_id="ana", min_position=-1),
                    timeout=5,
                )
            )
            == grpc.StatusCode.INVALID_ARGUMENT
        )
        listing = api.customers.ListCustomers
        assert (
            await code_of(
                listing(cpb.ListCustomersRequest(page_token="not a token"), timeout=5)
            )
            == grpc.StatusCode.INVALID_ARGUMENT
        )

    serve(scenario)


def test_list_customers_pages_through_everyone_once(serve: Callable[..., None]) -> None:
    async def scenario(api: Api) -> None:
        for n in range(5):
            api.store("Balance changed", f"p{n}", f"cus-{n}", amount=n + 1)
        await api.apply()
        seen: list[str] = []
        token = ""
        while True:
            page = await api.customers.ListCustomers(
                cpb.ListCustomersRequest(page_size=2, page_token=token), timeout=5
            )
            assert len(page.customers) <= 2
            seen += [c.customer_id for c in page.customers]
            token = page.next_page_token
            if not token:
                break
        assert sorted(seen) == [f"cus-{n}" for n in range(5)]
        assert len(seen) == 5

    serve(scenario)


def test_min_position_waits_for_the_worker(serve: Callable[..., None]) -> None:
    async def scenario(api: Api) -> None:
        position = api.store("Balance changed", "w1", "wait", amount=7)
        # Not applied yet: a short deadline runs out...
        assert (
            await code_of(
                api.customers.GetCustomer(
                    cpb.GetCustomerRequest(customer_id="wait", min_position=position),
                    timeout=0.3,
                )
            )
            == grpc.StatusCode.DEADLINE_EXCEEDED
        )
        # ...and a longer one is answered as soon as the worker applies it.
        call = api.customers.GetCustomer(
            cpb.GetCustomerRequest(customer_id="wait", min_position=position),
            timeout=10,
        )
        later = asyncio.get_running_loop().call_later(0.2, api.worker.run_once)
        got = await call
        later.cancel()
        assert got.points_balance == 7

    serve(scenario)


def test_events_head_stream_and_projection_status(serve: Callable[..., None]) -> None:
    async def scenario(api: Api) -> None:
        api.store("Balance changed", "s1", "a", amount=1)
        api.store("Wallet click", "s2", "b")
        head = api.store("Points expired", "s3", "a", amount=1)  # unknown type
        answer = await api.events.GetHeadPosition(
            epb.GetHeadPositionRequest(), timeout=5
        )
        assert answer.position == head == 3

        async def ids(request: epb.StreamEventsRequest) -> list[str]:
            stream = api.events.StreamEvents(request, timeout=5)
            return [m.event.id async for m in stream if m.HasField("event")]

        assert await ids(epb.StreamEventsRequest()) == ["s1", "s2", "s3"]
        assert await ids(epb.StreamEventsRequest(customer_id="a")) == ["s1", "s3"]
        assert await ids(epb.StreamEventsRequest(after_position=1)) == ["s2", "s3"]
        unknown = epb.StreamEventsRequest(event_types=[event_pb2.EVENT_TYPE_UNKNOWN])
        assert await ids(unknown) == ["s3"]
        assert (
            await code_of(ids(epb.StreamEventsRequest(after_position=-1)))
            == grpc.StatusCode.INVALID_ARGUMENT
        )
        assert (
            # A number this build does not know, as a newer client may send.
            await code_of(ids(epb.StreamEventsRequest(event_types=[999])))  # type: ignore[list-item]
            == grpc.StatusCode.INVALID_ARGUMENT
        )

        status = await api.projections.GetProjectionStatus(
            ppb.GetProjectionStatusRequest(), timeout=5
        )
        assert (status.head_position, status.applied_position, status.lag) == (3, 0, 3)
        await api.apply()
        status = await api.projections.GetProjectionStatus(
            ppb.GetProjectionStatusRequest(), timeout=5
        )
        assert (status.head_position, status.applied_position, status.lag) == (3, 3, 0)
        assert not status.rebuilding

    serve(scenario)
