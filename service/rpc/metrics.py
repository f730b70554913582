"""gRPC calls counted and timed by method and code."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from service.metrics import Metrics


def _code(context: grpc.aio.ServicerContext) -> str:
    code = context.code()
    if code is None:
        return "OK"
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


class MeteredRegistration:
    """Stands in for the server while the generated `add_*_to_server`
    functions register a service, and registers each method wrapped with
    its metrics instead. Wrapping at registration, not in a
    grpc.aio.ServerInterceptor, keeps the per-call interceptor coroutine off
    every call: a server with any interceptor runs one for each call, and
    the P2 profile showed it."""

    def __init__(self, server: grpc.aio.Server, metrics: Metrics) -> None:
        self.server = server
        self.metrics = metrics

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
                    return await inner(request, context)
                finally:
                    done(context, started)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def unary_stream(
                request: Any, context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                started = time.perf_counter()
                try:
                    async for item in inner_stream(request, context):
                        yield item
                finally:
                    done(context, started)

            return grpc.unary_stream_rpc_method_handler(
                unary_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # streaming requests (reflection): not counted
