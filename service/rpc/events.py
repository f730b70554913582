"""EventService: replay the stored history in global order, then follow it."""

from __future__ import annotations

import asyncio
import time
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
# A filtered stream reads at most this many positions past the last position
# it reported, and reports a checkpoint when that many pass with nothing
# matching: so a consumer's saved position never lags more than this many
# events behind what was scanned (positions can have gaps: fewer events).
CHECKPOINT_EVERY = 1000
# Live, a filtered stream reports non-matching events at once, then at most
# this often while they keep arriving and nothing matches.
LIVE_CHECKPOINT_SECONDS = 0.5


def _checkpoint(position: int) -> pb.StreamEventsResponse:
    return pb.StreamEventsResponse(checkpoint=pb.Checkpoint(position=position))


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
        filtered = bool(types or customer)
        # `position`: every event at or below it has been read (scanned).
        # `reported`: the greatest position the client has been sent, as an
        # item's position, a checkpoint or caught_up; never above `position`.
        position = reported = request.after_position
        caught_up_sent = False
        last_live_checkpoint = -LIVE_CHECKPOINT_SECONDS
        while True:
            cap = reported + CHECKPOINT_EVERY if filtered else None
            head, until, events = await asyncio.to_thread(
                self._read, position, types, cap
            )
            more = len(events) == PAGE
            if events:
                last = events[-1].position
                while events:  # let go of each event once it is sent
                    event = events.popleft()
                    if not customer or event.customer_id == customer:
                        yield convert.stream_item(event)
                        reported = event.position
            # A short page holds every event up to `until`: scanned through it.
            position = last if more else max(position, until)
            if filtered and position - reported >= CHECKPOINT_EVERY:
                yield _checkpoint(position)
                reported = position
            if more or until < head:
                continue
            # Nothing more up to the head read before the query.
            if not request.follow:
                if filtered and position > reported:
                    yield _checkpoint(position)  # where to resume from
                return
            # A filtered follower re-checks twice as often, so that events a
            # writer we are not told about stored are checkpointed within a
            # second too.
            wait = LIVE_CHECKPOINT_SECONDS if filtered else FOLLOW_POLL_SECONDS
            if not caught_up_sent:
                # The head itself, even when the caller asked to start beyond it.
                yield pb.StreamEventsResponse(caught_up=pb.CaughtUp(head_position=head))
                caught_up_sent = True
                reported = max(reported, head)
            elif filtered and position > reported:
                # Live, and only non-matching events arrived since the last
                # report: tell the client now, or once the throttle allows.
                now = time.monotonic()
                due = last_live_checkpoint + LIVE_CHECKPOINT_SECONDS
                if now >= due:
                    yield _checkpoint(position)
                    reported = position
                    last_live_checkpoint = now
                else:
                    wait = min(wait, due - now)
            await self.head.wait_beyond(position, wait)

    def _read(
        self, position: int, types: list[EventType | None], cap: int | None
    ) -> tuple[int, int, deque[RecordedEvent]]:
        """(head, until, events): up to PAGE events after `position` and at
        or below `until`, the head or `cap` if lower."""
        # The head first: everything at or below it is committed, so a short
        # answer means nothing more matching exists up to `until`.
        head = self.events.head()
        until = head if cap is None else min(head, cap)
        return (
            head,
            until,
            # Erasures too: every consumer must hear of them, filtered or not.
            deque(
                self.events.read(
                    position, PAGE, types=types, until=until, erasures=True
                )
            ),
        )

    @unary
    async def GetHeadPosition(
        self, request: pb.GetHeadPositionRequest, context: Context
    ) -> pb.GetHeadPositionResponse:
        head = await asyncio.to_thread(self.events.head)
        return pb.GetHeadPositionResponse(position=head)
