"""ProjectionService: how far the read models are, and online rebuilds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from jericommerce.loyalty.v1 import projection_service_pb2 as pb
from jericommerce.loyalty.v1 import projection_service_pb2_grpc as pb_grpc

from projections.stores.sql import SqlReadModels
from service.eventstore import EventStore
from service.rebuilds import Rebuilds
from service.rpc.admin import AdminPolicy
from service.rpc.context import Context
from service.rpc.errors import unary


class ProjectionServicer(pb_grpc.ProjectionServiceServicer):
    def __init__(
        self,
        events: EventStore,
        models: SqlReadModels,
        rebuilds: Rebuilds,
        applied: Callable[[], int],
        admin: AdminPolicy,
    ) -> None:
        self.events = events
        self.models = models
        self.rebuilds = rebuilds
        self.applied = applied
        self.admin = admin

    def _status(self) -> pb.GetProjectionStatusResponse:
        # Rebuilding is read first: once it reads false, the switch is done
        # and the applied position read after it is the new generation's.
        rebuilding = self.rebuilds.running
        applied = self.applied()
        head = self.events.head()
        answer = pb.GetProjectionStatusResponse(
            applied_position=applied,
            head_position=head,
            lag=max(0, head - applied),
            dead_letters=self.models.dead_letter_count(),
            rebuilding=rebuilding,
            last_rebuild_error=self.rebuilds.last_error or "",
        )
        progress = self.rebuilds.progress
        if rebuilding and progress is not None:
            answer.rebuild_progress.applied_position = progress.done
            answer.rebuild_progress.target_position = progress.target
            answer.rebuild_progress.events_per_second = progress.events_per_second
            answer.rebuild_progress.started_at.FromSeconds(int(progress.started_wall))
        return answer

    @unary
    async def GetProjectionStatus(
        self,
        request: pb.GetProjectionStatusRequest,
        context: Context,
    ) -> pb.GetProjectionStatusResponse:
        return await asyncio.to_thread(self._status)

    @unary
    async def RebuildProjections(
        self,
        request: pb.RebuildProjectionsRequest,
        context: Context,
    ) -> pb.RebuildProjectionsResponse:
        self.admin.check(context, "RebuildProjections")
        started, target = await asyncio.to_thread(self.rebuilds.start)
        return pb.RebuildProjectionsResponse(started=started, target_position=target)
