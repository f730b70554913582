"""Start and stop order of the service's roles on one event loop.

Everything started here is built by `service.bootstrap.build_service`.
`make run` runs every role in one process on SQLite. On PostgreSQL the
roles can run as separate processes (ingress xN, worker + standby, API xN);
they meet only in the database, and LISTEN/NOTIFY carries "new events" and
"applied up to" between them.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from service import logs
from service.adapters.sanic import start_server, stop_server
from service.bootstrap import Service

log = logs.get(__name__)


@dataclass
class Bound:
    http_port: int | None = None
    grpc_port: int | None = None


async def serve(
    service: Service,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[Bound], None] | None = None,
) -> None:
    """Run `service` until `stop` is set (or SIGTERM/SIGINT), then shut down
    in order: stop taking requests, finish the writes in flight, stop the
    worker; the caller closes the stores."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (RuntimeError, ValueError) as e:
            # Not possible outside the main thread (in-process tests): the
            # caller stops us with `stop`.
            log.debug("no signal handler", signal=sig.name, reason=str(e))

    settings = service.container.settings
    events, models = service.container.events, service.container.models
    service.head.advance(await asyncio.to_thread(events.head))
    service.applied.advance(await asyncio.to_thread(models.applied_position))
    bound = Bound()
    # Run in reverse order at the end; each may return an awaitable.
    stoppers: list[Callable[[], Any]] = []

    worker = service.worker
    if worker is not None:
        worker.start()
        stoppers.append(lambda: asyncio.to_thread(worker.stop))
    listener = service.listener
    if listener is not None:
        listener.start()
        stoppers.append(lambda: asyncio.to_thread(listener.stop))
    if service.committer is not None:
        service.committer.start()
    if service.writer is not None:
        await service.writer.start()
    if service.api is not None:
        stoppers.append(await _start_api(service))
        bound.grpc_port = service.api.port
    watch_task = loop.create_task(service.watch.run())
    http_server = None
    if service.app is not None:
        http_server, bound.http_port = await _start_ingress(service)
    elif service.probes is not None:
        http_server, bound.http_port = await start_server(
            service.probes, settings.http_host, settings.metrics_port or 0
        )

    started = loop.time()
    http = f"{settings.http_host}:{bound.http_port}" if bound.http_port else None
    log.info(
        "listening",
        roles=sorted(service.roles),
        http=http if service.app is not None else None,
        probes=http,
        grpc=f"{settings.grpc_host}:{bound.grpc_port}" if bound.grpc_port else None,
        backend=service.container.backend.name,
        head_position=service.head.position,
        applied_position=service.applied.position,
        access_log_limit=settings.access_log_limit,
    )
    if on_ready is not None:
        on_ready(bound)
    try:
        await stop.wait()
    finally:
        log.info("stopping", **service.container.metrics.summary())
        if http_server is not None:
            await stop_server(http_server)
        if service.writer is not None:
            await service.writer.stop()
        if service.committer is not None:
            await service.committer.stop()
        watch_task.cancel()
        for stopper in reversed(stoppers):
            result = stopper()
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                await result
        service.tracing.shutdown()  # the last spans are exported
        log.info(
            "stopped",
            uptime_s=round(loop.time() - started, 1),
            head_position=service.head.position,
            applied_position=service.applied.position,
        )


async def _start_api(service: Service) -> Callable[[], Awaitable[None]]:
    api = service.api
    assert api is not None
    server: Any = api.server
    await server.start()

    async def stop() -> None:
        await server.stop(grace=2)
        await asyncio.to_thread(api.rebuilds.stop)

    return stop


async def _start_ingress(service: Service) -> tuple[Any, int]:
    settings, sock, app = service.container.settings, service.http_sock, service.app
    assert app is not None
    return await start_server(app, settings.http_host, settings.http_port, sock)
