"""CustomerService: translate requests into reads, and reads into messages."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from jericommerce.loyalty.v1 import customer_service_pb2 as pb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as pb_grpc

from projections.customer.timekeys import micros
from service.errors import InvalidArgument
from service.positions import PositionWatch
from service.reads import CustomerReads
from service.rpc import convert
from service.rpc.answers import length_delimited
from service.rpc.context import Context
from service.rpc.errors import unary
from service.rpc.paging import (
    decode_token,
    encode_token,
    ledger_cursor,
    page_size,
    position_cursor,
    text_cursor,
)
from service.rpc.waiting import await_position

MAX_BATCH = 1000
T = TypeVar("T")


def _required(value: str, field: str) -> str:
    if not value.strip():
        raise InvalidArgument(field, "is required")
    # PostgreSQL text cannot hold NUL; no stored id or email has one.
    if "\x00" in value:
        raise InvalidArgument(field, "must not contain NUL characters")
    return value


class CustomerServicer(pb_grpc.CustomerServiceServicer):
    """GetCustomer, BatchGetCustomers, LookupCustomer and ListCustomers
    answer with the stored answers' bytes, serialized as they are (see
    service/rpc/answers.py and server.send_bytes_as_they_are)."""

    def __init__(
        self, reads: CustomerReads, applied: PositionWatch, *, inline_reads: bool
    ) -> None:
        self.reads = reads
        self.applied = applied
        # A point read from a local SQLite file takes microseconds: a thread
        # hop would cost more than the read. A network database gets a thread.
        self._inline = inline_reads

    async def _read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._inline:
            return fn(*args, **kwargs)
        return await asyncio.to_thread(fn, *args, **kwargs)

    @unary
    async def GetCustomer(
        self,
        request: pb.GetCustomerRequest,
        context: Context,
    ) -> Any:  # the stored bytes of the message (see above)
        cid = _required(request.customer_id, "customer_id")
        # The hot call (P2): no coroutine where nothing can wait; 0 asks for
        # no position, and await_position judges every other value.
        if request.min_position:
            await await_position(self.applied, request.min_position, context)
        if self._inline:
            return self.reads.get_answer(cid)
        return await asyncio.to_thread(self.reads.get_answer, cid)

    @unary
    async def BatchGetCustomers(
        self,
        request: pb.BatchGetCustomersRequest,
        context: Context,
    ) -> Any:  # the stored bytes of the message (see above)
        ids = list(request.customer_ids)
        if not ids:
            raise InvalidArgument("customer_ids", "is required")
        if len(ids) > MAX_BATCH:
            raise InvalidArgument("customer_ids", f"at most {MAX_BATCH} per call")
        for i, cid in enumerate(ids):
            _required(cid, f"customer_ids[{i}]")
        await await_position(self.applied, request.min_position, context)
        answers = await self._read(self.reads.batch_get_answers, ids)
        return length_delimited(1, answers)  # BatchGetCustomersResponse

    @unary
    async def LookupCustomer(
        self,
        request: pb.LookupCustomerRequest,
        context: Context,
    ) -> Any:  # the stored bytes of the message (see above)
        email = _required(request.email, "email")
        await await_position(self.applied, request.min_position, context)
        return await self._read(self.reads.lookup_answer, email)

    @unary
    async def ListCustomers(
        self,
        request: pb.ListCustomersRequest,
        context: Context,
    ) -> Any:  # the stored bytes of the message (see above)
        size = page_size(request.page_size)
        filters = {"tier": request.tier}
        after = decode_token(request.page_token, filters, text_cursor) or ""
        await await_position(self.applied, request.min_position, context)
        answers, last = await self._read(
            self.reads.list_answers, after=after, limit=size, tier=request.tier or None
        )
        # ListCustomersResponse: customers = 1, next_page_token = 2.
        token = [encode_token(last, filters).encode()] if last is not None else []
        return length_delimited(1, answers) + length_delimited(2, token)

    @unary
    async def ListCustomerEvents(
        self,
        request: pb.ListCustomerEventsRequest,
        context: Context,
    ) -> pb.ListCustomerEventsResponse:
        cid = _required(request.customer_id, "customer_id")
        size = page_size(request.page_size)
        filters = {"customer_id": cid}
        after = decode_token(request.page_token, filters, position_cursor) or 0
        await await_position(self.applied, request.min_position, context)
        page = await self._read(self.reads.history, cid, after=after, limit=size)
        token = encode_token(page.items[-1].position, filters) if page.more else ""
        return pb.ListCustomerEventsResponse(
            events=[convert.event_to_proto(e) for e in page.items],
            next_page_token=token,
        )

    @unary
    async def ListBalanceChanges(
        self,
        request: pb.ListBalanceChangesRequest,
        context: Context,
    ) -> pb.ListBalanceChangesResponse:
        cid = _required(request.customer_id, "customer_id")
        size = page_size(request.page_size)
        filters = {"customer_id": cid}
        cursor = decode_token(request.page_token, filters, ledger_cursor)
        if cursor is None:
            cursor = (-(2**62), "")
        await await_position(self.applied, request.min_position, context)
        page = await self._read(self.reads.ledger, cid, after=cursor, limit=size)
        token = ""
        if page.more:
            last = page.items[-1]
            token = encode_token([micros(last.created_at), last.event_id], filters)
        return pb.ListBalanceChangesResponse(
            balance_changes=[convert.ledger_entry_to_proto(e) for e in page.items],
            next_page_token=token,
        )
