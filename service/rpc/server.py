"""The grpc.aio server: our three services, health and reflection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from jericommerce.loyalty.v1 import (
    customer_service_pb2,
    customer_service_pb2_grpc,
    event_service_pb2,
    event_service_pb2_grpc,
    privacy_service_pb2,
    privacy_service_pb2_grpc,
    projection_service_pb2,
    projection_service_pb2_grpc,
)

from service.accesslog import AccessLog
from service.adapters.grpc import StandInServer
from service.config import Settings
from service.metrics import Metrics
from service.rpc.customers import CustomerServicer
from service.rpc.events import EventServicer
from service.rpc.limits import Admission
from service.rpc.privacy import PrivacyServicer
from service.rpc.projection_control import ProjectionServicer
from service.rpc.registration import Registration

# Requests are small (the largest, BatchGetCustomers, is at most 1,000 ids);
# anything bigger is refused by grpc with RESOURCE_EXHAUSTED before parsing.
MAX_RECEIVE_BYTES = 1 << 20
# Answers: the largest is a page of 1,000 customers. grpc's clients accept
# 4 MiB by default; a bigger answer needs the client's limit raised too.
MAX_SEND_BYTES = 16 << 20
SERVICE_NAMES = (
    customer_service_pb2.DESCRIPTOR.services_by_name["CustomerService"].full_name,
    event_service_pb2.DESCRIPTOR.services_by_name["EventService"].full_name,
    projection_service_pb2.DESCRIPTOR.services_by_name["ProjectionService"].full_name,
    privacy_service_pb2.DESCRIPTOR.services_by_name["PrivacyService"].full_name,
)


@dataclass
class Servicers:
    customers: CustomerServicer
    events: EventServicer
    projections: ProjectionServicer
    privacy: PrivacyServicer


class Health:
    """The standard grpc.health.v1 service; SERVING follows the store."""

    def __init__(self) -> None:
        self.servicer = health.aio.HealthServicer()

    async def set(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *SERVICE_NAMES):
            await self.servicer.set(name, status)


def tls(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS from the configured PEM files; with a client CA, mTLS (callers
    must present a certificate that CA signed). None: plaintext."""
    if settings.grpc_tls_cert is None or settings.grpc_tls_key is None:
        return None
    ca = settings.grpc_tls_client_ca
    return grpc.ssl_server_credentials(
        [(settings.grpc_tls_key.read_bytes(), settings.grpc_tls_cert.read_bytes())],
        root_certificates=ca.read_bytes() if ca else None,
        require_client_auth=ca is not None,
    )


def _serialize(message: Any) -> bytes:
    # A stored answer is already the message's bytes (service/rpc/answers.py).
    return message if type(message) is bytes else message.SerializeToString()


def send_bytes_as_they_are(service: str, handlers: dict[str, Any]) -> dict[str, Any]:
    """The unary methods' handlers with a response serializer that sends
    bytes as they are: handlers may answer with stored, already serialized
    messages."""
    return {
        name: grpc.unary_unary_rpc_method_handler(
            h.unary_unary,
            request_deserializer=h.request_deserializer,
            response_serializer=_serialize,
        )
        if h.unary_unary is not None
        else h
        for name, h in handlers.items()
    }


def create_server(
    address: str,
    credentials: grpc.ServerCredentials | None,
    servicers: Servicers,
    health_service: Health,
    admission: Admission,
    metrics: Metrics | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    access_log_limit: int = 0,
) -> tuple[grpc.aio.Server, int]:
    """A server bound to `address` (port 0 picks a free one) and its port.
    Call inside the running loop; start it with `await server.start()`.
    `interceptors`: tracing's, when it is on."""
    server = grpc.aio.server(
        interceptors=interceptors or None,
        options=[
            # One process owns the port unless several are started on purpose.
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            ("grpc.max_send_message_length", MAX_SEND_BYTES),
        ],
        # No maximum_concurrent_rpcs: every method, reflection included, is
        # registered through `registration` and counted by `admission`, and
        # grpc's own count cost each call ~12,000 instructions (2.4 % of a
        # bare server's call; docs/performance.md, "GetCustomer (P2)").
    )
    access = AccessLog("service.access.grpc", access_log_limit)
    registration = Registration(metrics or Metrics(), admission, access)
    target: Any = StandInServer(server, registration.rewrite)
    # Stored answers sent as bytes, then wrapped as every method is.
    customers: Any = StandInServer(target, send_bytes_as_they_are)
    customer_service_pb2_grpc.add_CustomerServiceServicer_to_server(
        servicers.customers, customers
    )
    event_service_pb2_grpc.add_EventServiceServicer_to_server(servicers.events, target)
    projection_service_pb2_grpc.add_ProjectionServiceServicer_to_server(
        servicers.projections, target
    )
    privacy_service_pb2_grpc.add_PrivacyServiceServicer_to_server(
        servicers.privacy, target
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_service.servicer, target)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(  # type: ignore[no-untyped-call]
        reflection.aio.ReflectionServicer(
            (
                *SERVICE_NAMES,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            )
        ),
        target,
    )
    port = (
        server.add_secure_port(address, credentials)
        if credentials is not None
        else server.add_insecure_port(address)
    )
    if port == 0:
        raise OSError(f"could not bind the gRPC API to {address}")
    return server, port
