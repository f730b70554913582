"""The Sanic ingress: translate an HTTP request into an append, and an
outcome into the status docs/webhooks.md names. No rules live here.

No answer or log line repeats a value from the request (ids, emails,
signatures, the target): Sanic's own error texts may, so each is replaced
by a fixed one."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from sanic import Request, Sanic, response
from sanic.exceptions import (
    BadRequest,
    PayloadTooLarge,
    SanicException,
)
from sanic.response import HTTPResponse

from service.adapters.sanic import AnswerableRequest, unreadable_reason
from service.eventstore import Appended, StoreUnavailable
from service.ingest import (
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    Envelope,
    InvalidWebhook,
    parse_envelope,
    verify_signature,
)
from service.ingress_status import STATUS, Outcome
from service.metrics import Metrics

WEBHOOK_PATH = "/webhooks/jericommerce"
_KEPT_HEADERS = (SIGNATURE_HEADER, EVENT_TYPE_HEADER, "content-type", "user-agent")
_names = itertools.count(1)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ingress:
    """What the HTTP layer needs, built by the composition root."""

    secrets: tuple[bytes, ...]
    max_body_bytes: int
    max_header_bytes: int
    max_id_length: int
    request_timeout: float
    keep_alive_timeout: float
    submit: Callable[[Envelope], Awaitable[Appended]]
    quarantine: Callable[[str, Mapping[str, str], bytes], int]
    ready: Callable[[], Awaitable[dict[str, bool]]]
    metrics: Metrics


def create_app(ingress: Ingress) -> Sanic:  # type: ignore[type-arg]
    # Sanic keeps a registry of app names; tests build several apps.
    # Sanic's own plain-text log handlers stay off: its loggers propagate to
    # ours, so every line is JSON.
    app = Sanic(
        f"loyalty_ingress_{next(_names)}",
        configure_logging=False,
        request_class=AnswerableRequest,
    )
    app.config.REQUEST_MAX_SIZE = ingress.max_body_bytes
    # Sanic caps the request head at 16 KiB whatever is configured.
    app.config.REQUEST_MAX_HEADER_SIZE = min(ingress.max_header_bytes, 16384)
    # Slow senders (a body trickled byte by byte) and idle connections are
    # cut off, so they cannot hold connections others need; see
    # service.adapters.sanic.DeadlineProtocol for why the clock does not
    # restart on every byte.
    # Sanic annotates these as int; it takes fractions of a second too.
    app.config.REQUEST_TIMEOUT = ingress.request_timeout  # type: ignore[assignment]
    app.config.RESPONSE_TIMEOUT = ingress.request_timeout  # type: ignore[assignment]
    app.config.KEEP_ALIVE_TIMEOUT = ingress.keep_alive_timeout  # type: ignore[assignment]
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.MOTD = False
    app.config.ACCESS_LOG = False
    m = ingress.metrics
    append_seconds = m.append_seconds.observe
    counted: dict[tuple[str, str], Any] = {}

    def refuse(outcome: Outcome, error: str, event_type: str = "-") -> HTTPResponse:
        m.webhooks.labels(event_type, outcome).inc()
        return response.json({"error": error}, status=STATUS[outcome])

    @app.post(WEBHOOK_PATH)
    async def webhook(request: Request) -> HTTPResponse:
        body = request.body or b""
        type_header = request.headers.get(EVENT_TYPE_HEADER)
        if len(body) > ingress.max_body_bytes:  # chunked bodies carry no length
            return refuse(Outcome.TOO_LARGE, "body too large")
        signature = request.headers.get(SIGNATURE_HEADER)
        if not verify_signature(body, signature, ingress.secrets):
            return refuse(Outcome.BAD_SIGNATURE, "unauthorized")
        try:
            envelope = parse_envelope(
                body, type_header, max_id_length=ingress.max_id_length
            )
        except InvalidWebhook as e:
            return await _quarantine(request, body, str(e))
        label = envelope.type.name if envelope.type else "UNKNOWN"
        started = time.perf_counter()
        try:
            appended = await ingress.submit(envelope)
        except StoreUnavailable as e:
            log.warning("answering 503: the store is unavailable: %s", _cause(e))
            return refuse(Outcome.UNAVAILABLE, "store unavailable, retry", label)
        append_seconds(time.perf_counter() - started)
        outcome = counted.get((label, appended.status))
        if outcome is None:  # labels() takes a lock and builds a key: once each
            outcome = counted[label, appended.status] = m.webhooks.labels(
                label, appended.status
            )
        outcome.inc()
        # The hot path's answer, formatted directly: both parts are ours
        # (a fixed word and an int), and JSONResponse showed in the profile.
        return HTTPResponse(
            b'{"status":"%s","position":%d}'
            % (appended.status.encode(), appended.position),
            # An Outcome is a StrEnum: it hashes and compares as its text.
            status=STATUS[appended.status],  # type: ignore[index]
            content_type="application/json",
        )

    async def _quarantine(request: Request, body: bytes, reason: str) -> HTTPResponse:
        headers = {k: request.headers[k] for k in _KEPT_HEADERS if k in request.headers}
        try:
            await asyncio.to_thread(ingress.quarantine, reason, headers, body)
        except StoreUnavailable as e:
            log.warning("answering 503: cannot quarantine: %s", _cause(e))
            return refuse(Outcome.UNAVAILABLE, "store unavailable, retry")
        m.quarantined.inc()
        return refuse(Outcome.INVALID, reason)

    @app.exception(PayloadTooLarge)
    async def too_large(request: Request, exception: Exception) -> HTTPResponse:
        # Sanic refuses an oversized Content-Length before our handler runs.
        return refuse(Outcome.TOO_LARGE, "request too large")

    @app.exception(BadRequest)
    async def unreadable(request: Request, exception: SanicException) -> HTTPResponse:
        # Sanic's own answer echoes the target, which may be personal data.
        return response.json(
            {"error": unreadable_reason(exception)}, exception.status_code
        )

    @app.exception(SanicException)
    async def refused(request: Request, exception: SanicException) -> HTTPResponse:
        # Sanic's texts quote the path (404, 405) or a header (417): answer
        # with the status's own name instead.
        status = exception.status_code
        return response.json(
            {"error": HTTPStatus(status).phrase.lower()},
            status=status,
            headers=getattr(exception, "headers", None) or None,
        )

    @app.exception(Exception)
    async def failed(request: Request, exception: Exception) -> HTTPResponse:
        # A fault of ours. Its text may quote what it was handling, so the
        # log keeps the type and the traceback's frames, not the message.
        log.error(
            "answering 500: %s in the ingress\n%s",
            type(exception).__name__,
            "".join(traceback.format_tb(exception.__traceback__)),
        )
        return response.json({"error": "internal error"}, status=500)

    @app.get("/healthz")
    async def healthz(request: Request) -> HTTPResponse:
        return response.json({"status": "alive"})

    @app.get("/readyz")
    async def readyz(request: Request) -> HTTPResponse:
        checks = await ingress.ready()
        ok = all(checks.values())
        return response.json(
            {"status": "ready" if ok else "not ready", "checks": checks},
            status=200 if ok else 503,
        )

    @app.get("/metrics")
    async def metrics(request: Request) -> HTTPResponse:
        return response.raw(m.exposition(), content_type=CONTENT_TYPE_LATEST)

    return app


def _cause(error: Exception) -> str:
    """The first line of a store error: PostgreSQL quotes values (a key, a
    parameter) only on the lines after it (DETAIL, CONTEXT)."""
    return str(error).partition("\n")[0][:200]
