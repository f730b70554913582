"""The one composition root: builds every part of every role from Settings.

`build` (stores.py) opens the stores (the `Container`); `build_service`
(roles.py) builds what the roles run on top of them: the projection
worker, the group committer or the link to the store's writer process, the
notifications, the health watch, and the servers (servers.py: the Sanic
app and the gRPC server with its servicers). `service.runtime` only starts
and stops what is built here.

Entrypoints (the CLI, tests) call these; nothing is built at import time.
A test passes its own parts (keyword arguments) instead of the real ones,
or builds one part alone with `ingress_app` or `grpc_api`.
"""

from service.bootstrap.roles import ALL_ROLES, Service, build_service, worker_linger
from service.bootstrap.servers import GrpcApi, grpc_api, ingress_app
from service.bootstrap.stores import Container, build

__all__ = [
    "ALL_ROLES",
    "Container",
    "GrpcApi",
    "Service",
    "build",
    "build_service",
    "grpc_api",
    "ingress_app",
    "worker_linger",
]
