"""The servers a role serves, built over a Container: the Sanic app of the
webhook ingress and the gRPC API with its servicers (each importable and
built alone by a test), and the HTTP socket several ingress processes share."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.bootstrap.stores import Container
from service.eventstore import Appended
from service.ingest import Envelope
from service.positions import PositionWatch
from service.tracing import OFF, Tracing

if TYPE_CHECKING:  # imported where used: each only matters to some roles
    from sanic import Sanic

    from service.rebuilds import Rebuilds
    from service.rpc.server import Health


@dataclass
class GrpcApi:
    """The gRPC server (bound, not started) and what its stop must stop."""

    server: object  # grpc.aio.Server
    port: int
    health: Health
    rebuilds: Rebuilds


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
