"""The one composition root: builds every part of every role from Settings.

`build` opens the stores (the `Container`); `build_service` builds what the
roles run on top of them: the projection worker, the group committer, the
LISTEN thread, the health watch, the Sanic app and the gRPC server with its
servicers. `service.runtime` only starts and stops what is built here.

Entrypoints (the CLI, tests) call these; nothing is built at import time.
A test passes its own parts (keyword arguments) instead of the real ones,
or builds one part alone with `ingress_app` or `grpc_api`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from projections.lease import Lease
from projections.stores.sql import SqlReadModels
from projections.worker import ProjectionWorker
from service import adapters, logs
from service.backends import (
    Backend,
    Local,
    Notifications,
    OpenedEvents,
    backend_for,
)
from service.config import Settings
from service.eventstore import Appended, EventStore
from service.groupcommit import AppendBatch, GroupCommitter
from service.handoff import HandOff
from service.health import HealthWatch
from service.ingest import Envelope
from service.metrics import Metrics
from service.notifications import notifications
from service.positions import PositionWatch
from service.quarantine import Quarantine
from service.rpc.answers import ANSWERS
from service.tracing import OFF, Tracing
from service.writer.client import RemoteCommitter
from service.writer.server import WriterServer
from service.writer.wire import address as writer_address

if TYPE_CHECKING:  # imported where used: each only matters to some roles
    from sanic import Sanic

    from service.privacy import Privacy
    from service.rebuilds import Rebuilds
    from service.rpc.server import Health

log = logs.get(__name__)
ALL_ROLES = frozenset({"ingress", "worker", "api"})


@dataclass
class Container:
    """The stores and what every role shares; `close` closes the stores."""

    settings: Settings
    backend: Backend
    events: EventStore
    quarantine: Quarantine
    models: SqlReadModels
    metrics: Metrics = field(default_factory=Metrics)
    closers: list[Callable[[], None]] = field(default_factory=list)

    def worker_lease(self) -> Lease:
        """Who may apply: one worker at a time, the rest wait."""
        return self.backend.worker_lease()

    def privacy(self) -> Privacy:
        """Erasure and export over this container's stores."""
        from service.privacy import Privacy

        scrub = self.backend.scrubber(self.events, self.quarantine, self.models)
        return Privacy(self.events, self.quarantine, self.models, scrub)

    def close(self) -> None:
        for close in reversed(self.closers):
            close()
        self.closers.clear()


def build(
    settings: Settings,
    *,
    backend: Backend | None = None,
    events: EventStore | None = None,
    quarantine: Quarantine | None = None,
    models: SqlReadModels | None = None,
    metrics: Metrics | None = None,
) -> Container:
    """Open the stores `settings` name (on `backend`, if given); the ones
    given are used instead (and closing the container does not close them)."""
    backend = backend or backend_for(settings)
    closers: list[Callable[[], None]] = []
    if events is None or quarantine is None:
        opened = _open_events(backend)
        closers.append(opened.close)
        events = events or opened.events
        quarantine = quarantine or opened.quarantine
    if models is None:
        models = backend.open_models(ANSWERS)
        closers.append(models.db.close)
    if events.keyring.legacy_through():
        log.warning(
            "the store holds events written before encryption; run "
            "`loyalty keys encrypt-existing` to encrypt them",
            through_position=events.keyring.legacy_through(),
        )
    return Container(
        settings=settings,
        backend=backend,
        events=events,
        quarantine=quarantine,
        models=models,
        metrics=metrics or Metrics(),
        closers=closers,
    )


def _open_events(backend: Backend) -> OpenedEvents:
    master, key_file, created = backend.master_key()
    if created:
        log.warning(
            "created a new master key; back it up apart from the data, and set "
            "MASTER_KEY_FILE in production",
            path=str(key_file),
            key_id=master.id,
        )
    return backend.open_events(master)


# --- the roles ----------------------------------------------------------------


@dataclass
class GrpcApi:
    """The gRPC server (bound, not started) and what its stop must stop."""

    server: object  # grpc.aio.Server
    port: int
    health: Health
    rebuilds: Rebuilds


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


def ingress_app(
    container: Container,
    submit: Callable[[Envelope], Awaitable[Appended]],
    ready: Callable[[], Awaitable[dict[str, bool]]],
    tracing: Tracing = OFF,
) -> Sanic:  # type: ignore[type-arg]
    """The Sanic app of the webhook ingress."""
    from service.webhook import Ingress, create_app

    settings = container.settings
    return create_app(
        Ingress(
            secrets=settings.webhook_secrets,
            max_body_bytes=settings.max_body_bytes,
            max_header_bytes=settings.max_header_bytes,
            max_id_length=settings.max_id_length,
            request_timeout=settings.request_timeout,
            keep_alive_timeout=settings.keep_alive_timeout,
            submit=submit,
            quarantine=container.quarantine.add,
            ready=ready,
            metrics=container.metrics,
            tracer=tracing.tracer,
            access_log_limit=settings.access_log_limit,
        )
    )


def grpc_api(
    container: Container,
    head: PositionWatch,
    applied: PositionWatch,
    tracing: Tracing,
    erased: Callable[[int], None],
) -> GrpcApi:
    """The gRPC servicers on a server bound to GRPC_HOST:GRPC_PORT (port 0:
    any free one). Call inside the running event loop. `erased` is told the
    position of each erasure's record the API appends."""
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
    events, models = container.events, container.models
    rebuilds = Rebuilds(events, models, container.metrics, container.backend)
    admin = AdminPolicy(
        mtls=settings.grpc_tls_client_ca is not None, admins=settings.admin_clients
    )
    health = Health()
    server, port = create_server(
        f"{settings.grpc_host}:{settings.grpc_port}",
        tls(settings),
        Servicers(
            customers=CustomerServicer(
                CustomerReads(models, events),
                applied,
                inline_reads=container.backend.inline_reads,
            ),
            events=EventServicer(events, head),
            projections=ProjectionServicer(
                events, models, rebuilds, models.applied_position, admin
            ),
            privacy=PrivacyServicer(container.privacy(), applied, admin, erased),
        ),
        health,
        Admission(
            max_calls=settings.grpc_max_calls,
            max_streams=settings.grpc_max_streams,
            max_streams_per_peer=settings.grpc_max_streams_per_peer,
        ),
        container.metrics,
        interceptors=tracing.grpc_interceptors(),
        access_log_limit=settings.access_log_limit,
    )
    return GrpcApi(server=server, port=port, health=health, rebuilds=rebuilds)


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
