"""PrivacyService: erase a customer for good, or export what is held."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from jericommerce.loyalty.v1 import privacy_service_pb2 as pb
from jericommerce.loyalty.v1 import privacy_service_pb2_grpc as pb_grpc
from jericommerce.loyalty.v1.customer_pb2 import Customer

from service.errors import InvalidArgument
from service.positions import PositionWatch
from service.privacy import WORKER_WAIT_SECONDS, Privacy
from service.rpc import convert
from service.rpc.admin import AdminPolicy
from service.rpc.context import Context
from service.rpc.errors import streaming, unary

MAX_ID_LENGTH = 1024


def _customer_id(value: str) -> str:
    if not value.strip():
        raise InvalidArgument("customer_id", "is required")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidArgument("customer_id", f"is longer than {MAX_ID_LENGTH}")
    return value


class PrivacyServicer(pb_grpc.PrivacyServiceServicer):
    def __init__(
        self,
        privacy: Privacy,
        applied: PositionWatch,
        admin: AdminPolicy,
        appended: Callable[[int], None],
    ) -> None:
        self.privacy = privacy
        self.applied = applied
        self.admin = admin
        # Told the position of each erasure's record: it is appended here,
        # not through a group commit, so nothing else tells this process's
        # head and worker of it (bootstrap.grpc_api).
        self.appended = appended

    @unary
    async def EraseCustomer(
        self,
        request: pb.EraseCustomerRequest,
        context: Context,
    ) -> pb.EraseCustomerResponse:
        cid = _customer_id(request.customer_id)
        self.admin.check(context, "EraseCustomer")
        erasure = await asyncio.to_thread(self.privacy.erase, cid)
        if erasure.position:
            self.appended(erasure.position)
            # The worker deletes the read models when it reaches the record;
            # waiting for it means no batch it read before the key was gone
            # can write the customer back after we return.
            await self.applied.wait_for(erasure.position, WORKER_WAIT_SECONDS)
        await asyncio.to_thread(self.privacy.finish, erasure)
        answer = pb.EraseCustomerResponse(
            customer_id=cid,
            erased=erasure.erased,
            events=erasure.events,
            position=erasure.position,
        )
        answer.erased_at.FromDatetime(erasure.erased_at)
        return answer

    @streaming
    async def ExportCustomer(
        self,
        request: pb.ExportCustomerRequest,
        context: Context,
    ) -> AsyncIterator[pb.ExportCustomerResponse]:
        cid = _customer_id(request.customer_id)
        self.admin.check(context, "ExportCustomer")
        # The stored answer: the very message GetCustomer sends.
        answer = await asyncio.to_thread(self.privacy.reads.get_answer, cid)
        yield pb.ExportCustomerResponse(customer=Customer.FromString(answer))
        positions = await asyncio.to_thread(self.privacy.positions, cid)
        for i in range(0, len(positions), 500):
            page = positions[i : i + 500]
            events = await asyncio.to_thread(self.privacy.events.read_positions, page)
            for event in events:
                if not event.kind:
                    yield pb.ExportCustomerResponse(event=convert.event_to_proto(event))
