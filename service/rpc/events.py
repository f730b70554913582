"""EventService: replay the stored history in global order, then follow it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from jericommerce.loyalty.v1 import event_service_pb2 as pb
from jericommerce.loyalty.v1 import event_service_pb2_grpc as pb_grpc

from projections.events import EventType, RecordedEvent
from service.errors import InvalidArgument
from service.eventstore import EventStore
from service.positions import PositionWatch
from service.rpc import convert
from service.rpc.errors import streaming, unary

BATCH = 500
# Followers also re-check this often, in case a writer we are not told about
# (another process on SQLite) stored something.
FOLLOW_POLL_SECONDS = 1.0


class EventServicer(pb_grpc.EventServiceServicer):
    def __init__(self, events: EventStore, head: PositionWatch) -> None:
        self.events = events
        self.head = head

    @streaming
    async def StreamEvents(
        self, request: pb.StreamEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StreamEventsResponse]:
        if request.after_position < 0:
            raise InvalidArgument("after_position", "must not be negative")
        types: list[EventType | None] = []
        for i, value in enumerate(request.event_types):
            try:
                types.append(convert.event_type_from_proto(value))
            except ValueError:
                raise InvalidArgument(
                    f"event_types[{i}]", f"{value} is not an event type"
                ) from None
        customer = request.customer_id
        position = request.after_position
        caught_up_sent = False
        while True:
            head, events = await asyncio.to_thread(self._read, position, types)
            for event in events:
                if not customer or event.customer_id == customer:
                    yield convert.stream_item(event)
            if events:
                position = events[-1].position
                continue
            # Nothing (matching) up to the head read before the query: skip
            # past it, so filtered followers do not spin on other events.
            position = max(position, head)
            if not request.follow:
                return
            if not caught_up_sent:
                yield pb.StreamEventsResponse(
                    caught_up=pb.CaughtUp(head_position=position)
                )
                caught_up_sent = True
            await self.head.wait_beyond(position, FOLLOW_POLL_SECONDS)

    def _read(
        self, position: int, types: list[EventType | None]
    ) -> tuple[int, list[RecordedEvent]]:
        # The head first: everything at or below it is committed, so an empty
        # answer means nothing matching exists up to it.
        head = self.events.head()
        return head, self.events.read(position, BATCH, types=types, until=head)

    @unary
    async def GetHeadPosition(
        self, request: pb.GetHeadPositionRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetHeadPositionResponse:
        head = await asyncio.to_thread(self.events.head)
        return pb.GetHeadPositionResponse(position=head)
