"""EventService: replay the stored history in global order, then follow it."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from jericommerce.loyalty.v1 import event_service_pb2 as pb
from jericommerce.loyalty.v1 import event_service_pb2_grpc as pb_grpc

from projections.events import EventType, RecordedEvent
from service.errors import InvalidArgument
from service.eventstore import EventStore
from service.positions import PositionWatch
from service.rpc import convert
from service.rpc.context import Context
from service.rpc.errors import streaming, unary

# Events read per query. A stream holds at most one page, and reads the
# next only when grpc has taken every message of this one: each `yield`
# returns once the message is handed to HTTP/2, which stops taking them
# while the client's flow-control window is full. So a slow reader costs
# one page and a window, not its backlog.
PAGE = 64
# Followers also re-check this often, in case a writer we are not told about
# (another process on SQLite) stored something.
FOLLOW_POLL_SECONDS = 1.0


class EventServicer(pb_grpc.EventServiceServicer):
    def __init__(self, events: EventStore, head: PositionWatch) -> None:
        self.events = events
        self.head = head

    @streaming
    async def StreamEvents(
        self, request: pb.StreamEventsRequest, context: Context
    ) -> AsyncIterator[pb.StreamEventsResponse]:
        if request.after_position < 0:
            raise InvalidArgument("after_position", "must not be negative")
        types: list[EventType | None] = []
        for i, value in enumerate(request.event_types):
            try:
                types.append(convert.event_type_from_proto(value))
            except ValueError:
                raise InvalidArgument(
                    f"event_types[{i}]", "is not an event type this server knows"
                ) from None
        customer = request.customer_id
        position = request.after_position
        caught_up_sent = False
        while True:
            head, events = await asyncio.to_thread(self._read, position, types)
            if events:
                position = events[-1].position
                while events:  # let go of each event once it is sent
                    event = events.popleft()
                    if not customer or event.customer_id == customer:
                        yield convert.stream_item(event)
                continue
            # Nothing (matching) up to the head read before the query: skip
            # past it, so filtered followers do not spin on other events.
            position = max(position, head)
            if not request.follow:
                return
            if not caught_up_sent:
                # The head itself, even when the caller asked to start beyond it.
                yield pb.StreamEventsResponse(caught_up=pb.CaughtUp(head_position=head))
                caught_up_sent = True
            await self.head.wait_beyond(position, FOLLOW_POLL_SECONDS)

    def _read(
        self, position: int, types: list[EventType | None]
    ) -> tuple[int, deque[RecordedEvent]]:
        # The head first: everything at or below it is committed, so an empty
        # answer means nothing matching exists up to it.
        head = self.events.head()
        return head, deque(self.events.read(position, PAGE, types=types, until=head))

    @unary
    async def GetHeadPosition(
        self, request: pb.GetHeadPositionRequest, context: Context
    ) -> pb.GetHeadPositionResponse:
        head = await asyncio.to_thread(self.events.head)
        return pb.GetHeadPositionResponse(position=head)
