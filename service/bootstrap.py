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

from projections.lease import Lease, SoleWorker
from projections.stores.sql import SqlReadModels
from projections.worker import ProjectionWorker
from service import logs
from service.config import Settings
from service.eventstore import Appended, EventStore
from service.groupcommit import AppendBatch, GroupCommitter
from service.health import HealthWatch
from service.ingest import Envelope
from service.masterkey import resolve_master_key
from service.metrics import Metrics
from service.positions import PositionWatch
from service.quarantine import Quarantine
from service.rpc.answers import ANSWERS
from service.tracing import OFF, Tracing

if TYPE_CHECKING:  # imported where used: each only matters to some roles
    from sanic import Sanic

    from service.postgres_notify import Listener
    from service.privacy import Privacy
    from service.rebuilds import Rebuilds
    from service.rpc.server import Health

log = logs.get(__name__)
ALL_ROLES = frozenset({"ingress", "worker", "api"})


@dataclass
class Container:
    """The stores and what every role shares; `close` closes the stores."""

    settings: Settings
    events: EventStore
    quarantine: Quarantine
    models: SqlReadModels
    metrics: Metrics = field(default_factory=Metrics)
    closers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def events_channel(self) -> str:
        """The channel the event store's recorder NOTIFYs on insert."""
        return str(getattr(self.events.recorder, "channel_name", ""))

    def worker_lease(self) -> Lease:
        """Who may apply: on PostgreSQL one worker at a time, the rest wait."""
        if self.settings.database_url:
            from projections.stores.postgres import PostgresLease

            return PostgresLease(self.settings.database_url)
        return SoleWorker()

    def privacy(self) -> Privacy:
        """Erasure and export over this container's stores."""
        from service.privacy import Privacy, scrubber

        scrub = scrubber(self.settings, self.events, self.quarantine, self.models)
        return Privacy(self.events, self.quarantine, self.models, scrub)

    def close(self) -> None:
        for close in reversed(self.closers):
            close()
        self.closers.clear()


def build(
    settings: Settings,
    *,
    events: EventStore | None = None,
    quarantine: Quarantine | None = None,
    models: SqlReadModels | None = None,
    metrics: Metrics | None = None,
) -> Container:
    """Open the stores `settings` name; the ones given are used instead
    (and closing the container does not close them)."""
    closers: list[Callable[[], None]] = []
    if events is None or quarantine is None:
        opened_events, opened_quarantine, close = _open_events(settings)
        closers.append(close)
        events = events or opened_events
        quarantine = quarantine or opened_quarantine
    if models is None:
        models = _open_models(settings)
        closers.append(models.db.close)
    if events.keyring.legacy_through():
        log.warning(
            "the store holds events written before encryption; run "
            "`loyalty keys encrypt-existing` to encrypt them",
            through_position=events.keyring.legacy_through(),
        )
    return Container(
        settings=settings,
        events=events,
        quarantine=quarantine,
        models=models,
        metrics=metrics or Metrics(),
        closers=closers,
    )


def _open_events(
    settings: Settings,
) -> tuple[EventStore, Quarantine, Callable[[], None]]:
    master, key_file, created = resolve_master_key(settings)
    if created:
        log.warning(
            "created a new master key; back it up apart from the data, and set "
            "MASTER_KEY_FILE in production",
            path=str(key_file),
            key_id=master.id,
        )
    if settings.database_url:
        from service.postgres_store import open_postgres, schema_lock

        with schema_lock(settings.database_url):
            events, quarantine, pg = open_postgres(settings.database_url, master)
        return events, quarantine, pg.close
    from service.sqlite_store import open_sqlite

    events, quarantine, lite = open_sqlite(settings.data_dir, master)
    return events, quarantine, lite.close


def _open_models(settings: Settings) -> SqlReadModels:
    if settings.database_url:
        from projections.stores.postgres import open_postgres_read_models
        from service.postgres_store import schema_lock

        with schema_lock(settings.database_url):
            return open_postgres_read_models(settings.database_url, ANSWERS)
    from projections.stores.sqlite import open_sqlite_read_models

    return open_sqlite_read_models(settings.data_dir / "readmodels.sqlite", ANSWERS)


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
    committer: GroupCommitter | None = None
    listener: Listener | None = None
    app: Sanic | None = None  # type: ignore[type-arg]
    http_sock: socket.socket | None = None  # else HTTP_HOST:HTTP_PORT
    api: GrpcApi | None = None
    tracing: Tracing = OFF  # shut down (spans flushed) when the service stops
    # A process without the ingress serves its probes alone on METRICS_PORT.
    probes: Sanic | None = None  # type: ignore[type-arg]


def build_service(
    container: Container,
    roles: frozenset[str] = ALL_ROLES,
    *,
    reuse_port: bool = False,
    lease: Lease | None = None,
    append: AppendBatch | None = None,
    tracing: Tracing = OFF,
) -> Service:
    """The parts of `roles` over `container`'s stores. Call inside the running
    event loop. `reuse_port`: the HTTP socket is shared with other ingress
    processes; `lease` and `append` replace the worker's lease and the group
    committer's store append; `tracing` gives every part its spans."""
    settings, metrics = container.settings, container.metrics
    loop = asyncio.get_running_loop()
    head, applied = PositionWatch(loop), PositionWatch(loop)
    worker = None
    if "worker" in roles:

        def on_applied(position: int) -> None:
            applied.advance(position)
            metrics.applied_position.set(position)

        def on_lease(held: bool) -> None:
            metrics.lease_held.set(1 if held else 0)

        metrics.lease_held.set(0)
        worker = ProjectionWorker(
            container.events,
            container.models,
            on_applied=on_applied,
            lease=lease or container.worker_lease(),
            batch_scope=tracing.projection_batch(),
            on_lease=on_lease,
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
    if settings.database_url:
        service.listener = _listener(container, head, applied, worker, follow_events)
    if "ingress" in roles:

        def committed(answers: list[Appended]) -> None:
            metrics.batch_size.observe(len(answers))
            head.advance(max(a.position for a in answers))
            if worker is not None:
                worker.wake()

        service.committer = GroupCommitter(
            append or container.events.append,
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
        service.api = grpc_api(container, head, applied, tracing)
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
    tracing: Tracing = OFF,
) -> GrpcApi:
    """The gRPC servicers on a server bound to GRPC_HOST:GRPC_PORT (port 0:
    any free one). Call inside the running event loop."""
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
    rebuilds = Rebuilds(events, models, container.metrics)
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
                inline_reads=settings.database_url is None,
            ),
            events=EventServicer(events, head),
            projections=ProjectionServicer(
                events, models, rebuilds, models.applied_position, admin
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


def _listener(
    container: Container,
    head: PositionWatch,
    applied: PositionWatch,
    worker: ProjectionWorker | None,
    follow_events: bool,
) -> Listener:
    """LISTEN for other processes' commits (PostgreSQL only)."""
    from projections.stores.postgres import APPLIED_CHANNEL
    from service.postgres_notify import Listener

    assert container.settings.database_url is not None
    events, models = container.events, container.models

    def on_events(_payload: str) -> None:
        try:
            head.advance(events.head())
        except Exception as e:
            # The health watch polls the head as well; this only delays it.
            log.warning("could not read the head after NOTIFY", error=str(e))
        if worker is not None:
            worker.wake()

    def on_applied(payload: str) -> None:
        schema, _, rest = payload.partition(":")
        generation, _, position = rest.partition(":")
        if not payload:
            try:
                applied.advance(models.applied_position())
            except Exception as e:
                log.warning("could not read the applied position", error=str(e))
            return
        # A rebuild's generation is not what readers see until it is switched in.
        if schema == listener.schema and int(generation) == models.current_generation():
            applied.advance(int(position))

    channels: dict[str, Callable[[str], None]] = {APPLIED_CHANNEL: on_applied}
    if follow_events:
        channels[container.events_channel] = on_events
    listener = Listener(container.settings.database_url, channels)
    return listener
