"""min_position: read-your-writes, bounded by the caller's deadline."""

from __future__ import annotations

from opentelemetry import trace

from service import tracing
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
    # A span of its own inside the call's (a no-op unless tracing is on).
    with tracing.span(
        trace.get_tracer(tracing.NAME),
        "wait for min_position",
        attributes={
            "loyalty.min_position": min_position,
            "loyalty.applied_position": watch.position,
        },
    ) as span:
        reached = await watch.wait_for(min_position, timeout)
        span.set_attribute("loyalty.min_position.reached", reached)
    if not reached:
        raise PositionNotReached(
            f"min_position is not applied yet (applied: {watch.position})"
        )
