"""min_position: read-your-writes, bounded by the caller's deadline."""

from __future__ import annotations

from service.errors import InvalidArgument, PositionNotReached
from service.positions import PositionWatch
from service.rpc.context import Context

# A call without a deadline still must not hang forever.
MAX_WAIT_SECONDS = 30.0


async def await_position(
    watch: PositionWatch, min_position: int, context: Context
) -> None:
    if min_position < 0:
        raise InvalidArgument("min_position", "must not be negative")
    if min_position == 0 or watch.position >= min_position:
        return
    remaining = context.time_remaining()
    timeout = MAX_WAIT_SECONDS if remaining is None else max(0.0, remaining - 0.02)
    if not await watch.wait_for(min_position, timeout):
        raise PositionNotReached(
            f"min_position is not applied yet (applied: {watch.position})"
        )
