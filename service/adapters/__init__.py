"""Adapters to the libraries we reach into: one module per library, the
only place a private name of that library is used.

Each module names the version it was written for and what to re-check on
an upgrade; `problems()` lists what differs from it (the composition root
logs them at start, and tests/integration/test_library_adapters.py fails on
them).
"""

from __future__ import annotations


def problems() -> list[str]:
    """Every adapter's differences from the library it was written for."""
    from service.adapters import eventsourcing, grpc, sanic

    return eventsourcing.problems() + grpc.problems() + sanic.problems()
