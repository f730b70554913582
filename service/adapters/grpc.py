"""Every reliance on how grpcio registers services, in one place.

The generated `add_*Servicer_to_server(servicer, server)` functions are the
only way to turn a servicer into method handlers; to change the handlers
(wrap each call, serialize differently) we hand them a stand-in server
that rewrites what they register and passes it on.

Written for grpcio 1.85.1 and the code grpcio-tools 1.85.1 generates. On
an upgrade, re-check (tests/integration/test_library_adapters.py fails when
these change): a generated `add_*_to_server` calls
`server.add_generic_rpc_handlers((generic_handler,))` and then
`server.add_registered_method_handlers(service, handlers)` with the same
handlers, and nothing else on the server; `grpc.aio.Server` still has
`add_registered_method_handlers`; a method handler still has
`unary_unary`, `unary_stream`, `request_deserializer` and
`response_serializer`.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version
from typing import Any, Protocol

import grpc

WRITTEN_FOR = "1.85.1"
PACKAGES = ("grpcio", "grpcio-tools")

# (service name, {method name: handler}) -> the handlers to register instead
Rewrite = Callable[[str, dict[str, Any]], dict[str, Any]]


class Registrar(Protocol):
    """What the generated registration functions call on a server."""

    def add_generic_rpc_handlers(self, handlers: Any) -> None: ...
    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, Any]
    ) -> None: ...


def problems() -> list[str]:
    """What differs from the grpcio this module was written for."""
    found = []
    for package in PACKAGES:
        installed = version(package)
        if installed != WRITTEN_FOR:
            found.append(
                f"{package} {installed} installed, adapters written for "
                f"{WRITTEN_FOR}: re-check service/adapters/grpc.py"
            )
    if not callable(getattr(grpc.aio.Server, "add_registered_method_handlers", None)):
        found.append("grpc.aio.Server.add_registered_method_handlers is gone")
    return found


class StandInServer:
    """Passed to a generated `add_*_to_server` in place of the server: the
    handlers it registers are rewritten and registered on `target` (the
    server, or another stand-in), both ways the generated code uses."""

    def __init__(self, target: Registrar, rewrite: Rewrite) -> None:
        self.target = target
        self.rewrite = rewrite

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        # The generated code registers the same methods again right after,
        # through add_registered_method_handlers; the rewritten copies are
        # registered there, as both kinds.
        pass

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, Any]
    ) -> None:
        rewritten = self.rewrite(service, handlers)
        self.target.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, rewritten),)
        )
        self.target.add_registered_method_handlers(service, rewritten)
