"""Start and stop order of the single-process service on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass

from projections.worker import ProjectionWorker
from service import logs
from service.bootstrap import Container
from service.eventstore import Appended, StoreUnavailable
from service.groupcommit import GroupCommitter
from service.positions import PositionWatch
from service.reads import CustomerReads
from service.rebuilds import Rebuilds
from service.webhook import Ingress, create_app

log = logs.get(__name__)
HEALTH_INTERVAL = 1.0


@dataclass
class Bound:
    http_port: int
    grpc_port: int


async def serve(
    container: Container,
    *,
    http_sock: socket.socket | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[Bound], None] | None = None,
) -> None:
    """Run until `stop` is set (or SIGTERM/SIGINT), then shut down in order:
    stop taking requests, finish the writes in flight, stop the worker,
    close the store."""
    from service.rpc.customers import CustomerServicer
    from service.rpc.events import EventServicer
    from service.rpc.projection_control import ProjectionServicer
    from service.rpc.server import Health, Servicers, create_server

    settings = container.settings
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Not possible outside the main thread (in-process tests).
        with contextlib.suppress(RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)

    metrics = container.metrics
    applied = PositionWatch(loop)
    head = PositionWatch(loop)
    head.advance(await asyncio.to_thread(container.events.head))

    def on_applied(position: int) -> None:
        applied.advance(position)
        metrics.applied_position.set(position)

    worker = ProjectionWorker(container.events, container.models, on_applied=on_applied)
    worker.start()
    rebuilds = Rebuilds(container.events, container.models)

    def committed(answers: list[Appended]) -> None:
        metrics.batch_size.observe(len(answers))
        head.advance(max(a.position for a in answers))
        worker.wake()

    committer = GroupCommitter(container.events.append, on_commit=committed)
    committer.start()

    async def ready() -> dict[str, bool]:
        try:
            await asyncio.to_thread(container.events.head)
            store = True
        except StoreUnavailable:
            store = False
        return {"store": store, "projections": worker.status().running}

    app = create_app(
        Ingress(
            secrets=settings.webhook_secrets,
            max_body_bytes=settings.max_body_bytes,
            submit=committer.submit,
            quarantine=container.quarantine.add,
            ready=ready,
            metrics=metrics,
        )
    )
    health = Health()
    grpc_server, grpc_port = create_server(
        f"{settings.grpc_host}:{settings.grpc_port}",
        Servicers(
            customers=CustomerServicer(
                CustomerReads(container.models, container.events), applied
            ),
            events=EventServicer(container.events, head),
            projections=ProjectionServicer(
                container.events,
                container.models,
                rebuilds,
                lambda: worker.status().applied_position,
            ),
        ),
        health,
    )
    await grpc_server.start()

    async def watch_health() -> None:
        while True:
            checks = await ready()
            await health.set(checks["store"])
            metrics.head_position.set(head.position)
            metrics.lag_events.set(max(0, head.position - applied.position))
            await asyncio.sleep(HEALTH_INTERVAL)

    health_task = loop.create_task(watch_health())

    server = await app.create_server(
        host=None if http_sock else settings.http_host,
        port=None if http_sock else settings.http_port,
        sock=http_sock,
        return_asyncio_server=True,
    )
    assert server is not None and server.server is not None
    await server.startup()
    await server.before_start()
    await server.start_serving()
    await server.after_start()
    http_port = server.server.sockets[0].getsockname()[1]
    log.info(
        "listening",
        http=f"{settings.http_host}:{http_port}",
        grpc=f"{settings.grpc_host}:{grpc_port}",
        backend=settings.backend,
    )
    if on_ready is not None:
        on_ready(Bound(http_port=http_port, grpc_port=grpc_port))
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()
        await committer.stop()
        health_task.cancel()
        await grpc_server.stop(grace=2)
        await asyncio.to_thread(rebuilds.stop)
        await asyncio.to_thread(worker.stop)
        log.info("stopped")
