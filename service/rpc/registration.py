"""Every method the server registers, wrapped once: admission (limits),
requests that do not parse, and metrics by method and code."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from service.errors import InvalidArgument, ResourceExhausted
from service.metrics import Metrics
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


def _code(context: grpc.aio.ServicerContext) -> str:
    code = context.code()
    if code is None:
        return "OK"
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


class Registration:
    """Stands in for the server while the generated `add_*_to_server`
    functions register a service, and registers each method wrapped instead.
    Wrapping at registration, not in a grpc.aio.ServerInterceptor, keeps the
    per-call interceptor coroutine off every call: a server with any
    interceptor runs one for each call, and the P2 profile showed it."""

    def __init__(
        self, server: grpc.aio.Server, metrics: Metrics, admission: Admission
    ) -> None:
        self.server = server
        self.metrics = metrics
        self.admission = admission

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        # The generated code registers the same methods again below, through
        # add_registered_method_handlers; the wrapped copies are registered
        # there, as both kinds.
        pass

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, Any]
    ) -> None:
        wrapped = {
            name: self._wrap(f"/{service}/{name}", handler)
            for name, handler in handlers.items()
        }
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, wrapped),)
        )
        self.server.add_registered_method_handlers(service, wrapped)

    def _wrap(self, method: str, handler: Any) -> Any:
        m = self.metrics
        admission = self.admission
        streams_open = m.grpc_streams_open
        seconds = m.grpc_seconds.labels(method)
        counters: dict[str, Any] = {}

        def done(context: grpc.aio.ServicerContext, started: float) -> None:
            seconds.observe(time.perf_counter() - started)
            code = _code(context)
            counter = counters.get(code)
            if counter is None:
                counter = counters[code] = m.grpc_requests.labels(method, code)
            counter.inc()

        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary_unary(
                request: Any, context: grpc.aio.ServicerContext
            ) -> Any:
                started = time.perf_counter()
                try:
                    if request is MALFORMED:
                        raise _malformed()
                    with admission.call():
                        return await inner(request, context)
                except (InvalidArgument, ResourceExhausted) as e:
                    await context.abort_with_status(rich_status(e))
                finally:
                    done(context, started)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary,
                request_deserializer=_lenient(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def unary_stream(
                request: Any, context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                started = time.perf_counter()
                try:
                    if request is MALFORMED:
                        raise _malformed()
                    with admission.stream(peer_of(context)):
                        streams_open.inc()
                        try:
                            async for item in inner_stream(request, context):
                                yield item
                        finally:
                            streams_open.dec()
                except (InvalidArgument, ResourceExhausted) as e:
                    await context.abort_with_status(rich_status(e))
                finally:
                    done(context, started)

            return grpc.unary_stream_rpc_method_handler(
                unary_stream,
                request_deserializer=_lenient(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        return handler  # streaming requests (reflection): not wrapped
