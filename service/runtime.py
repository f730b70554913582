"""Start and stop order of the service's roles on one event loop.

`make run` runs every role in one process on SQLite. On PostgreSQL the
roles can run as separate processes (ingress xN, worker + standby, API xN);
they meet only in the database, and LISTEN/NOTIFY carries "new events" and
"applied up to" between them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from projections.worker import ProjectionWorker
from service import logs
from service.bootstrap import Container
from service.eventstore import Appended, StoreUnavailable
from service.groupcommit import GroupCommitter
from service.positions import PositionWatch

if TYPE_CHECKING:  # imported where used: psycopg only matters on PostgreSQL
    from sanic.server.async_server import AsyncioServer

    from service.postgres_notify import Listener
    from service.rpc.server import Health

log = logs.get(__name__)
HEALTH_INTERVAL = 1.0
PURGE_INTERVAL = 3600.0
ALL_ROLES = frozenset({"ingress", "worker", "api"})


@dataclass
class Bound:
    http_port: int | None = None
    grpc_port: int | None = None


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket several ingress processes can share (the kernel
    spreads connections among them)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def serve(
    container: Container,
    *,
    roles: frozenset[str] = ALL_ROLES,
    http_sock: socket.socket | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[Bound], None] | None = None,
) -> None:
    """Run `roles` until `stop` is set (or SIGTERM/SIGINT), then shut down in
    order: stop taking requests, finish the writes in flight, stop the
    worker; the caller closes the stores."""
    import signal

    settings = container.settings
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Not possible outside the main thread (in-process tests).
        with contextlib.suppress(RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)

    metrics = container.metrics
    models, events = container.models, container.events
    applied = PositionWatch(loop)
    head = PositionWatch(loop)
    head.advance(await asyncio.to_thread(events.head))
    applied.advance(await asyncio.to_thread(models.applied_position))
    bound = Bound()
    stoppers: list[Callable[[], object]] = []

    worker: ProjectionWorker | None = None
    if "worker" in roles:

        def on_applied(position: int) -> None:
            applied.advance(position)
            metrics.applied_position.set(position)

        worker = ProjectionWorker(
            events, models, on_applied=on_applied, lease=container.worker_lease()
        )
        worker.start()
        stoppers.append(lambda: asyncio.to_thread(worker.stop))

    # The head only feeds an ingress-only process's gauges: it polls it
    # below instead of querying it after every commit any process makes.
    follow_events = worker is not None or "api" in roles
    if settings.database_url:
        listener = _listen(container, head, applied, worker, follow_events)
        listener.start()
        stoppers.append(lambda: asyncio.to_thread(listener.stop))

    committer: GroupCommitter | None = None
    if "ingress" in roles:

        def committed(answers: list[Appended]) -> None:
            metrics.batch_size.observe(len(answers))
            head.advance(max(a.position for a in answers))
            if worker is not None:
                worker.wake()

        committer = GroupCommitter(events.append, on_commit=committed)
        committer.start()

    async def ready() -> dict[str, bool]:
        try:
            await asyncio.to_thread(events.ping)
            checks = {"store": True}
        except StoreUnavailable:
            checks = {"store": False}
        if worker is not None:
            checks["projections"] = worker.status().running
        return checks

    health: Health | None = None
    if "api" in roles:
        health, grpc_stop, bound.grpc_port = await _start_api(container, head, applied)
        stoppers.append(grpc_stop)

    def counts() -> tuple[int, int]:
        return models.dead_letter_count(), container.quarantine.open_count()

    purged_at = -PURGE_INTERVAL

    async def purge() -> None:
        # Quarantined requests past their retention; one role does it.
        nonlocal purged_at
        if worker is None or loop.time() - purged_at < PURGE_INTERVAL:
            return
        purged_at = loop.time()
        cutoff = datetime.now(UTC) - timedelta(days=settings.quarantine_retention_days)
        try:
            purged = await asyncio.to_thread(container.quarantine.purge, cutoff)
        except Exception as e:
            log.warning("could not purge the quarantine", error=str(e))
            return
        if purged:
            log.info("purged quarantined requests past retention", count=purged)

    async def watch() -> None:
        caught_up_at = loop.time()
        while True:
            await purge()
            checks = await ready()
            if health is not None:
                await health.set(checks["store"])
            if checks["store"]:
                with contextlib.suppress(Exception):
                    if worker is None:
                        # Another process applies: a slow poll backs up NOTIFY.
                        applied.advance(
                            await asyncio.to_thread(models.applied_position)
                        )
                    if not follow_events:
                        head.advance(await asyncio.to_thread(events.head))
                    dead, quarantined = await asyncio.to_thread(counts)
                    metrics.dead_letters.set(dead)
                    metrics.quarantine_open.set(quarantined)
            lag = max(0, head.position - applied.position)
            if lag == 0:
                caught_up_at = loop.time()
            metrics.head_position.set(head.position)
            metrics.applied_position.set(applied.position)
            metrics.lag_events.set(lag)
            metrics.lag_seconds.set(loop.time() - caught_up_at)
            metrics.position_waits.labels("head").set(head.waiting)
            metrics.position_waits.labels("applied").set(applied.waiting)
            await asyncio.sleep(HEALTH_INTERVAL)

    watch_task = loop.create_task(watch())

    if "ingress" not in roles and settings.metrics_port is not None:
        # No HTTP server of ours in this process: prometheus-client's own.
        from prometheus_client import start_http_server

        metrics_server, _ = start_http_server(
            settings.metrics_port, settings.http_host, registry=metrics.registry
        )
        stoppers.append(metrics_server.shutdown)

    http_server: AsyncioServer | None = None
    if "ingress" in roles:
        assert committer is not None
        http_server, bound.http_port = await _start_ingress(
            container, committer, ready, http_sock
        )

    log.info(
        "listening",
        roles=sorted(roles),
        http=f"{settings.http_host}:{bound.http_port}" if bound.http_port else None,
        grpc=f"{settings.grpc_host}:{bound.grpc_port}" if bound.grpc_port else None,
        backend=settings.backend,
    )
    if on_ready is not None:
        on_ready(bound)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        if http_server is not None:
            await http_server.before_stop()
            http_server.close()
            await http_server.wait_closed()
            await http_server.after_stop()
        if committer is not None:
            await committer.stop()
        watch_task.cancel()
        for stopper in reversed(stoppers):
            result = stopper()
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                await result
        log.info("stopped")


def _listen(
    container: Container,
    head: PositionWatch,
    applied: PositionWatch,
    worker: ProjectionWorker | None,
    follow_events: bool,
) -> Listener:
    from projections.stores.postgres import APPLIED_CHANNEL
    from service.postgres_notify import Listener

    assert container.settings.database_url is not None
    events, models = container.events, container.models

    def on_events(_payload: str) -> None:
        with contextlib.suppress(Exception):
            head.advance(events.head())
        if worker is not None:
            worker.wake()

    def on_applied(payload: str) -> None:
        schema, _, rest = payload.partition(":")
        generation, _, position = rest.partition(":")
        if not payload:
            with contextlib.suppress(Exception):
                applied.advance(models.applied_position())
            return
        # A rebuild's generation is not what readers see until it is switched in.
        if schema == listener.schema and int(generation) == models.current_generation():
            applied.advance(int(position))

    channels: dict[str, Callable[[str], None]] = {APPLIED_CHANNEL: on_applied}
    if follow_events:
        channels[container.events_channel] = on_events
    listener = Listener(container.settings.database_url, channels)
    return listener


async def _start_api(
    container: Container, head: PositionWatch, applied: PositionWatch
) -> tuple[Health, Callable[[], Awaitable[None]], int]:
    from service.reads import CustomerReads
    from service.rebuilds import Rebuilds
    from service.rpc.admin import AdminPolicy
    from service.rpc.customers import CustomerServicer
    from service.rpc.events import EventServicer
    from service.rpc.limits import Admission
    from service.rpc.privacy import PrivacyServicer
    from service.rpc.projection_control import ProjectionServicer
    from service.rpc.server import Health, Servicers, create_server, tls

    settings = container.settings
    rebuilds = Rebuilds(container.events, container.models)
    admin = AdminPolicy(
        mtls=settings.grpc_tls_client_ca is not None, admins=settings.admin_clients
    )
    health = Health()
    server, port = create_server(
        f"{settings.grpc_host}:{settings.grpc_port}",
        tls(settings),
        Servicers(
            customers=CustomerServicer(
                CustomerReads(container.models, container.events),
                applied,
                inline_reads=settings.database_url is None,
            ),
            events=EventServicer(container.events, head),
            projections=ProjectionServicer(
                container.events,
                container.models,
                rebuilds,
                container.models.applied_position,
                admin,
            ),
            privacy=PrivacyServicer(container.privacy(), applied, admin),
        ),
        health,
        Admission(
            max_calls=settings.grpc_max_calls,
            max_streams=settings.grpc_max_streams,
            max_streams_per_peer=settings.grpc_max_streams_per_peer,
        ),
        container.metrics,
    )
    await server.start()

    async def stop() -> None:
        await server.stop(grace=2)
        await asyncio.to_thread(rebuilds.stop)

    return health, stop, port


async def _start_ingress(
    container: Container,
    committer: GroupCommitter,
    ready: Callable[[], object],
    http_sock: socket.socket | None,
) -> tuple[AsyncioServer, int]:
    from service.webhook import DeadlineProtocol, Ingress, create_app

    settings = container.settings
    app = create_app(
        Ingress(
            secrets=settings.webhook_secrets,
            max_body_bytes=settings.max_body_bytes,
            max_header_bytes=settings.max_header_bytes,
            max_id_length=settings.max_id_length,
            request_timeout=settings.request_timeout,
            keep_alive_timeout=settings.keep_alive_timeout,
            submit=committer.submit,
            quarantine=container.quarantine.add,
            ready=ready,  # type: ignore[arg-type]
            metrics=container.metrics,
        )
    )
    server = await app.create_server(
        host=None if http_sock else settings.http_host,
        port=None if http_sock else settings.http_port,
        sock=http_sock,
        protocol=DeadlineProtocol,
        return_asyncio_server=True,
    )
    assert server is not None and server.server is not None
    await server.startup()
    await server.before_start()
    await server.start_serving()
    await server.after_start()
    return server, server.server.sockets[0].getsockname()[1]
