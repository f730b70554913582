"""The Sanic ingress: translate an HTTP request into an append, and an
outcome into the status docs/webhooks.md names. No rules live here.

No answer or log line repeats a value from the request (ids, emails,
signatures, the target): Sanic's own error texts may, so each is replaced
by a fixed one."""

from __future__ import annotations

import asyncio
import itertools
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer
from sanic import Request, Sanic, response
from sanic.exceptions import (
    BadRequest,
    PayloadTooLarge,
    SanicException,
)
from sanic.response import HTTPResponse

from service import logs, tracing
from service.adapters.sanic import AnswerableRequest, unreadable_reason
from service.eventstore import Appended, StoreUnavailable
from service.http_access import HttpAccess, request_id_of
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
from service.probes import add_probes

WEBHOOK_PATH = "/webhooks/jericommerce"
_KEPT_HEADERS = (SIGNATURE_HEADER, EVENT_TYPE_HEADER, "content-type", "user-agent")
_names = itertools.count(1)
log = logs.get(__name__)


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
    # Spans for each webhook, when tracing is on (service/tracing.py).
    tracer: Tracer | None = None
    access_log_limit: int = 0  # lines a second; 0: no access log


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

    access = HttpAccess(ingress.access_log_limit)
    answered = access.answered

    def refuse(
        request: Request,
        outcome: Outcome,
        error: str,
        event_type: str = "-",
        received: float | None = None,
        **detail: object,
    ) -> HTTPResponse:
        m.webhooks.labels(event_type, outcome).inc()
        status = STATUS[outcome]
        # Every refusal, never rate-limited: the sender's problem (or ours,
        # for a 503) is what an operator looks for first. Fixed reasons only.
        log.warning(
            "webhook refused",
            status=status,
            outcome=str(outcome),
            reason=error,
            event_type=event_type,
            request_id=request_id_of(request),
            **detail,
        )
        answer = response.json({"error": error}, status=status)
        return answered(request, answer, received, str(outcome))

    tracer = ingress.tracer

    @app.post(WEBHOOK_PATH)
    async def webhook(request: Request) -> HTTPResponse:
        if tracer is None:  # tracing off: not one span call on the hot path
            return await handle(request, None)
        with tracing.span(
            tracer,
            f"POST {WEBHOOK_PATH}",
            context=tracing.extract(request.headers),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": "POST", "http.route": WEBHOOK_PATH},
        ) as span:
            answer = await handle(request, span)
            span.set_attribute("http.response.status_code", answer.status)
            if answer.status >= 500:
                span.set_status(StatusCode.ERROR)
            return answer

    async def handle(request: Request, span: Span | None) -> HTTPResponse:
        received = time.perf_counter()
        body = request.body or b""
        type_header = request.headers.get(EVENT_TYPE_HEADER)
        if len(body) > ingress.max_body_bytes:  # chunked bodies carry no length
            return refuse(request, Outcome.TOO_LARGE, "body too large", "-", received)
        signature = request.headers.get(SIGNATURE_HEADER)
        if tracer is None:
            verified = verify_signature(body, signature, ingress.secrets)
        else:
            with tracing.span(tracer, "verify signature") as check:
                verified = verify_signature(body, signature, ingress.secrets)
                check.set_attribute("loyalty.signature.valid", verified)
        if not verified:
            reason = "no signature" if signature is None else "signature does not match"
            return refuse(
                request,
                Outcome.BAD_SIGNATURE,
                "unauthorized",
                "-",
                received,
                why=reason,
            )
        try:
            envelope = parse_envelope(
                body,
                type_header,
                max_id_length=ingress.max_id_length,
                traceparent=(
                    ""
                    if span is None
                    else tracing.traceparent_of(span.get_span_context())
                ),
            )
        except InvalidWebhook as e:
            if span is not None:  # the reason is ours, never the sender's text
                span.add_event("quarantined", {"loyalty.reason": str(e)})
            return await _quarantine(request, body, str(e), received)
        label = envelope.type.name if envelope.type else "UNKNOWN"
        started = time.perf_counter()
        try:
            if tracer is None or span is None:
                appended = await ingress.submit(envelope)
            else:
                span.set_attributes(
                    {
                        "loyalty.event.id": envelope.id,
                        "loyalty.customer.id": envelope.customer_id,
                        "loyalty.event.type": label,
                    }
                )
                with tracing.span(tracer, "append") as waiting:
                    appended = await ingress.submit(envelope)
                    waiting.set_attributes(
                        {
                            "loyalty.append.status": appended.status,
                            "loyalty.position": appended.position,
                        }
                    )
        except StoreUnavailable as e:
            return refuse(
                request,
                Outcome.UNAVAILABLE,
                "store unavailable, retry",
                label,
                received,
                cause=_cause(e),
            )
        append_seconds(time.perf_counter() - started)
        outcome = counted.get((label, appended.status))
        if outcome is None:  # labels() takes a lock and builds a key: once each
            outcome = counted[label, appended.status] = m.webhooks.labels(
                label, appended.status
            )
        outcome.inc()
        # The hot path's answer, formatted directly: both parts are ours
        # (a fixed word and an int), and JSONResponse showed in the profile.
        answer = HTTPResponse(
            b'{"status":"%s","position":%d}'
            % (appended.status.encode(), appended.position),
            # An Outcome is a StrEnum: it hashes and compares as its text.
            status=STATUS[appended.status],  # type: ignore[index]
            content_type="application/json",
        )
        if not access.enabled:
            return answer
        return answered(request, answer, received, appended.status, appended.position)

    async def _quarantine(
        request: Request, body: bytes, reason: str, received: float
    ) -> HTTPResponse:
        headers = {k: request.headers[k] for k in _KEPT_HEADERS if k in request.headers}
        try:
            kept = await asyncio.to_thread(ingress.quarantine, reason, headers, body)
        except StoreUnavailable as e:
            return refuse(
                request,
                Outcome.UNAVAILABLE,
                "store unavailable, retry",
                "-",
                received,
                cause=f"cannot quarantine: {_cause(e)}",
            )
        m.quarantined.inc()
        return refuse(
            request, Outcome.INVALID, reason, "-", received, quarantine_id=kept
        )

    @app.exception(PayloadTooLarge)
    async def too_large(request: Request, exception: Exception) -> HTTPResponse:
        # Sanic refuses an oversized Content-Length before our handler runs.
        return refuse(request, Outcome.TOO_LARGE, "request too large")

    @app.exception(BadRequest)
    async def unreadable(request: Request, exception: SanicException) -> HTTPResponse:
        # Sanic's own answer echoes the target, which may be personal data.
        reason = unreadable_reason(exception)
        status = exception.status_code
        log.warning(
            "request refused",
            status=status,
            reason=reason,
            request_id=request_id_of(request),
        )
        return answered(request, response.json({"error": reason}, status))

    @app.exception(SanicException)
    async def refused(request: Request, exception: SanicException) -> HTTPResponse:
        # Sanic's texts quote the path (404, 405) or a header (417): answer
        # with the status's own name instead.
        status = exception.status_code
        if status == 408:  # a sender too slow to finish its request
            log.warning(
                "request refused",
                status=status,
                reason="request timeout",
                request_id=request_id_of(request),
            )
        elif status == 503 and request.path == WEBHOOK_PATH:
            # Sanic's answer to a handler slower than the timeout (a store
            # that hangs rather than fails): a 503 the sender retries, so
            # counted and logged like the store's own.
            m.webhooks.labels("-", Outcome.UNAVAILABLE).inc()
            log.warning(
                "webhook refused",
                status=status,
                outcome=str(Outcome.UNAVAILABLE),
                reason="no answer within the timeout",
                event_type="-",
                request_id=request_id_of(request),
            )
        answer = response.json(
            {"error": HTTPStatus(status).phrase.lower()},
            status=status,
            headers=getattr(exception, "headers", None) or None,
        )
        return answered(request, answer)

    @app.exception(Exception)
    async def failed(request: Request, exception: Exception) -> HTTPResponse:
        # A fault of ours. Its text may quote what it was handling, so the
        # log keeps the type and the traceback's frames, not the message.
        log.error(
            "answering 500: a fault in the ingress",
            error=type(exception).__name__,
            request_id=request_id_of(request),
            frames="".join(traceback.format_tb(exception.__traceback__)),
        )
        m.webhooks.labels("-", Outcome.ERROR).inc()
        return answered(request, response.json({"error": "internal error"}, status=500))

    add_probes(app, ingress.ready, m.exposition)
    return app


def _cause(error: Exception) -> str:
    """The first line of a store error: PostgreSQL quotes values (a key, a
    parameter) only on the lines after it (DETAIL, CONTEXT)."""
    return str(error).partition("\n")[0][:200]
