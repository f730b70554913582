"""Every method the server registers, wrapped once: admission (limits),
requests that do not parse, and metrics by method and code."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from service.accesslog import (
    REQUEST_ID_HEADER,
    AccessLog,
    millis,
    request_id,
    trace_id,
)
from service.errors import InvalidArgument, ResourceExhausted
from service.metrics import Metrics
from service.rpc.context import Context
from service.rpc.errors import rich_status
from service.rpc.limits import Admission, peer_of


class _Malformed:
    """Stands for a request whose bytes do not parse as its message."""


MALFORMED = _Malformed()


def _lenient(deserialize: Any) -> Any:
    # grpc answers a deserializer's exception with UNKNOWN (and an error
    # log); bad bytes are the client's fault, so they get INVALID_ARGUMENT.
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:
            return MALFORMED

    return parse


def _malformed() -> InvalidArgument:
    return InvalidArgument("request", "is not a valid message of this method's type")


def _request_id(context: Context) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_HEADER and isinstance(value, str):
            return request_id(value)
    return request_id(None)


def _code(context: Context) -> str:
    code = context.code()
    if code is None:
        return "OK"
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


class Registration:
    """Wraps each method a service registers (see service.adapters.grpc's
    StandInServer). Wrapping at registration, not in a
    grpc.aio.ServerInterceptor, keeps the per-call interceptor coroutine off
    every call: a server with any interceptor runs one for each call, and
    the P2 profile showed it."""

    def __init__(
        self,
        metrics: Metrics,
        admission: Admission,
        access: AccessLog | None = None,
    ) -> None:
        self.metrics = metrics
        self.admission = admission
        self.access = access or AccessLog("service.access.grpc", 0)

    def rewrite(self, service: str, handlers: dict[str, Any]) -> dict[str, Any]:
        return {
            name: self._wrap(f"/{service}/{name}", handler)
            for name, handler in handlers.items()
        }

    def _wrap(self, method: str, handler: Any) -> Any:
        m = self.metrics
        admission = self.admission
        streams_open = m.grpc_streams_open
        seconds = m.grpc_seconds.labels(method)
        counters: dict[str, Any] = {}
        access = self.access

        def done(context: Context, started: float) -> None:
            seconds.observe(time.perf_counter() - started)
            code = _code(context)
            counter = counters.get(code)
            if counter is None:
                counter = counters[code] = m.grpc_requests.labels(method, code)
            counter.inc()
            if access.take():
                access.emit(
                    "grpc call",
                    method=method,
                    code=code,
                    duration_ms=millis(started),
                    request_id=_request_id(context),
                    trace_id=trace_id(),
                )

        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary_unary(request: Any, context: Context) -> Any:
                started = time.perf_counter()
                try:
                    if request is MALFORMED:
                        raise _malformed()
                    admission.admit_call()
                    try:
                        return await inner(request, context)
                    finally:
                        admission.release_call()
                except (InvalidArgument, ResourceExhausted) as e:
                    await context.abort_with_status(rich_status(e))
                finally:
                    done(context, started)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary,
                request_deserializer=_lenient(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )

        def streaming(inner: Any) -> Any:
            # Every stream, server reflection's included, is within the
            # admission's limits and counted while open. An async generator
            # function, as grpc.aio runs any other handler in a thread.
            async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
                started = time.perf_counter()
                try:
                    if request is MALFORMED:
                        raise _malformed()
                    with admission.stream(peer_of(context)):
                        streams_open.inc()
                        try:
                            async for item in inner(request, context):
                                yield item
                        finally:
                            streams_open.dec()
                except (InvalidArgument, ResourceExhausted) as e:
                    await context.abort_with_status(rich_status(e))
                finally:
                    done(context, started)

            return stream

        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                streaming(handler.unary_stream),
                request_deserializer=_lenient(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                streaming(handler.stream_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # client streams: none registered
