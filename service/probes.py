"""`/healthz`, `/readyz` and `/metrics` for every role.

The ingress serves them on its webhook port; a process without the ingress
(`loyalty worker`, `loyalty api`) serves them alone on `METRICS_PORT`, with
404 for any other path. One set of handlers, so the answers mean the same
on every role: alive = the process answers; ready = every check passes
(the store reachable and, where the worker runs, the lease held or standing
by for the worker that holds it).
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from prometheus_client import CONTENT_TYPE_LATEST
from sanic import Request, Sanic, response
from sanic.exceptions import SanicException
from sanic.response import HTTPResponse

PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
Ready = Callable[[], Awaitable[dict[str, bool]]]
_names = itertools.count(1)


def add_probes(
    app: Sanic,  # type: ignore[type-arg]
    ready: Ready,
    exposition: Callable[[], bytes],
    describe: Callable[[], dict[str, str]] | None = None,
) -> None:
    """The three probe routes on `app`."""

    @app.get("/healthz")
    async def healthz(request: Request) -> HTTPResponse:
        return response.json({"status": "alive"})

    @app.get("/readyz")
    async def readyz(request: Request) -> HTTPResponse:
        checks = await ready()
        ok = all(checks.values())
        body: dict[str, object] = {
            "status": "ready" if ok else "not ready",
            "checks": checks,
        }
        if describe is not None:
            body.update(describe())
        return response.json(body, status=200 if ok else 503)

    @app.get("/metrics")
    async def metrics(request: Request) -> HTTPResponse:
        return response.raw(exposition(), content_type=CONTENT_TYPE_LATEST)


def probe_app(
    ready: Ready,
    exposition: Callable[[], bytes],
    describe: Callable[[], dict[str, str]] | None = None,
) -> Sanic:  # type: ignore[type-arg]
    """An app with the probes alone, for a process without the ingress."""
    app = Sanic(f"loyalty_probes_{next(_names)}", configure_logging=False)
    app.config.MOTD = False
    app.config.ACCESS_LOG = False
    app.config.FALLBACK_ERROR_FORMAT = "json"
    add_probes(app, ready, exposition, describe)

    @app.exception(SanicException)
    async def refused(request: Request, exception: SanicException) -> HTTPResponse:
        # Sanic's own texts quote the path; answer with the status's name.
        status = exception.status_code
        return response.json({"error": HTTPStatus(status).phrase.lower()}, status)

    return app
