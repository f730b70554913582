"""`build_service`: every part the roles run, over a Container's stores:
the projection worker, the group committer (or the link to the store's
writer process), the notifications, the health watch and the servers."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from projections.lease import Lease
from projections.worker import ProjectionWorker
from service import adapters, logs
from service.backends import Backend, Local, Notifications
from service.bootstrap.servers import GrpcApi, grpc_api, ingress_app, reuse_port_socket
from service.bootstrap.stores import Container
from service.config import Settings
from service.eventstore import Appended
from service.groupcommit import AppendBatch, GroupCommitter
from service.handoff import HandOff
from service.health import HealthWatch
from service.notifications import notifications
from service.positions import PositionWatch
from service.tracing import OFF, Tracing
from service.writer.client import RemoteCommitter
from service.writer.server import WriterServer
from service.writer.wire import address as writer_address

if TYPE_CHECKING:  # imported where used: only a process with the ingress
    from sanic import Sanic

log = logs.get(__name__)
ALL_ROLES = frozenset({"ingress", "worker", "api"})


@dataclass
class Service:
    """Every part `roles` run, built and not yet started."""

    container: Container
    roles: frozenset[str]
    head: PositionWatch  # the newest stored position
    applied: PositionWatch  # the newest position the read models hold
    watch: HealthWatch
    worker: ProjectionWorker | None = None
    # The group committer, or an ingress's link to the writer process.
    committer: GroupCommitter | RemoteCommitter | None = None
    writer: WriterServer | None = None  # the store's writer process serves here
    listener: Notifications | None = None  # other processes' commits
    app: Sanic | None = None  # type: ignore[type-arg]
    http_sock: socket.socket | None = None  # else HTTP_HOST:HTTP_PORT
    api: GrpcApi | None = None
    tracing: Tracing = OFF  # shut down (spans flushed) when the service stops
    # A process without the ingress serves its probes alone on METRICS_PORT.
    probes: Sanic | None = None  # type: ignore[type-arg]


def worker_linger(settings: Settings, backend: Backend) -> float:
    """Seconds the projection worker lingers under load: the setting's,
    else the backend's default."""
    if settings.projection_linger_ms is None:
        return backend.worker_linger
    return settings.projection_linger_ms / 1000


def build_service(
    container: Container,
    roles: frozenset[str] = ALL_ROLES,
    *,
    reuse_port: bool = False,
    lease: Lease | None = None,
    append: AppendBatch | None = None,
    tracing: Tracing = OFF,
    remote_writer: bool = False,
) -> Service:
    """The parts of `roles` over `container`'s stores. Call inside the running
    event loop. `reuse_port`: the HTTP socket is shared with other ingress
    processes; `lease` and `append` replace the worker's lease and the group
    committer's store append; `tracing` gives every part its spans;
    `remote_writer`: the ingress sends its envelopes to the store's writer
    process (role "writer", SQLite) instead of appending them itself."""
    settings, metrics = container.settings, container.metrics
    for problem in adapters.problems():
        # Serving on a library the adapters were not written for: say so,
        # so an upgrade's surprises are found in the logs, not guessed at.
        log.warning("library adapter out of date", problem=problem)
    loop = asyncio.get_running_loop()
    head, applied = PositionWatch(loop), PositionWatch(loop)
    worker = None
    # One process that both commits and projects hands its events over.
    handoff = HandOff(container.events) if {"ingress", "worker"} <= roles else None
    if "worker" in roles:

        def on_applied(position: int) -> None:
            applied.advance(position)
            metrics.applied_position.set(position)

        def on_lease(held: bool) -> None:
            metrics.lease_held.set(1 if held else 0)
            if handoff is not None:
                handoff.follow(held)

        metrics.lease_held.set(0)
        worker = ProjectionWorker(
            container.events if handoff is None else handoff,
            container.models,
            on_applied=on_applied,
            lease=lease or container.worker_lease(),
            batch_scope=tracing.projection_batch(),
            on_lease=on_lease,
            linger=worker_linger(settings, container.backend),
            on_batch=metrics.projection_batch_size.observe,
        )
    # The head only feeds an ingress-only process's gauges: its health watch
    # polls it instead of querying it after every commit any process makes.
    follow_events = worker is not None or "api" in roles
    service = Service(
        container=container,
        roles=roles,
        head=head,
        applied=applied,
        worker=worker,
        tracing=tracing,
        watch=HealthWatch(
            events=container.events,
            models=container.models,
            quarantine=container.quarantine,
            metrics=metrics,
            head=head,
            applied=applied,
            worker=worker,
            follow_events=follow_events,
            retention_days=settings.quarantine_retention_days,
        ),
    )
    local = Local(roles, head, applied)
    service.listener = notifications(container, local, worker, follow_events)

    def appended(position: int) -> None:
        # A commit here (webhooks, or an erasure's record the API appends):
        # the head's followers learn of it, a worker here applies it now.
        head.advance(position)
        if worker is not None:
            worker.wake()

    def committed(answers: list[Appended]) -> None:
        metrics.batch_size.observe(len(answers))
        appended(max(a.position for a in answers))

    if "writer" in roles:
        service.committer = GroupCommitter(
            container.events.append, on_commit=committed, tracer=tracing.tracer
        )
        service.writer = WriterServer(
            service.committer, writer_address(settings.data_dir)
        )
    if "ingress" in roles:
        if remote_writer:
            # The writer counts the batches and tells other processes of the
            # commits; an API here follows them from the replies.
            remote = RemoteCommitter(
                writer_address(settings.data_dir),
                container.events.space,
                appended if "api" in roles else None,
            )
            service.committer = remote
            service.watch.writer_link = lambda: remote.connected
        else:
            append = append or container.events.append
            service.committer = GroupCommitter(
                append if handoff is None else handoff.recording(append),
                on_commit=committed,
                tracer=tracing.tracer,
            )
        service.app = ingress_app(
            container, service.committer.submit, service.watch.ready, tracing
        )
        if reuse_port:
            service.http_sock = reuse_port_socket(
                settings.http_host, settings.http_port
            )
    elif settings.metrics_port is not None:
        from service.probes import probe_app

        watch = service.watch
        service.probes = probe_app(watch.ready, metrics.exposition, watch.describe)
    if "api" in roles:
        service.api = grpc_api(container, head, applied, tracing, appended)
        service.watch.grpc_health = service.api.health
    return service
