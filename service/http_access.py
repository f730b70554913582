"""The ingress's access line, written where each answer is made.

Not Sanic middleware: Sanic compiles its request path once per process
(TouchUp) from the first app that starts, so middleware on one app changes
how every other app in the process runs (and tests start many).
"""

from __future__ import annotations

from sanic import Request
from sanic.response import HTTPResponse

from service.accesslog import (
    REQUEST_ID_HEADER,
    AccessLog,
    millis,
    request_id,
    trace_id,
)


def request_id_of(request: Request) -> str:
    """The request's id, minted (or taken from a plain `x-request-id`) once."""
    rid = getattr(request.ctx, "request_id", None)
    if rid is None:
        rid = request.ctx.request_id = request_id(
            request.headers.get(REQUEST_ID_HEADER)
        )
    return str(rid)


class HttpAccess:
    def __init__(self, per_second: int) -> None:
        self.log = AccessLog("service.access.http", per_second)
        self.enabled = self.log.enabled

    def answered(
        self,
        request: Request,
        answer: HTTPResponse,
        received: float | None = None,
        outcome: str | None = None,
        position: int | None = None,
    ) -> HTTPResponse:
        """`answer`, after its access line (when the budget allows one);
        `received` is the handler's perf_counter at the start."""
        if self.log.take():  # the fields are gathered only for a line it allows
            route = request.route
            self.log.emit(
                "http request",
                method=request.method,
                # The route, never the target: a target may quote anything.
                route=f"/{route.path}" if route is not None else None,
                status=answer.status,
                duration_ms=millis(received) if received is not None else None,
                request_id=request_id_of(request),
                trace_id=trace_id(),
                outcome=outcome,
                position=position,
            )
        rid = getattr(request.ctx, "request_id", None)
        if rid is not None:  # logged: the sender can quote it to us
            answer.headers[REQUEST_ID_HEADER] = rid
        return answer
