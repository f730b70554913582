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
from sanic.compat import Header
from sanic.exceptions import (
    BadRequest,
    BadURL,
    PayloadTooLarge,
    RequestTimeout,
    SanicException,
)
from sanic.http import Stage
from sanic.models.protocol_types import TransportProtocol
from sanic.response import HTTPResponse
from sanic.server.protocols.http_protocol import HttpProtocol

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
# Sanic refuses a request it cannot read with BadRequest (BadURL is the same
# class), whatever the cause; its text tells them apart. Ours is fixed.
_URL_TEXT = "request target is not a valid URL"
_UNREADABLE = {
    "Bad chunked encoding": "invalid chunked framing in the request body",
    "Bad content-length": "invalid Content-Length header",
    "Bad Request": "request head is not valid HTTP/1.1",
    "URL may only contain US-ASCII characters.": _URL_TEXT,
}
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


def create_app(ingress: Ingress) -> Sanic:
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
    # DeadlineProtocol for why the clock does not restart on every byte.
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
        text = str(exception)
        reason = _UNREADABLE.get(text)
        if reason is None:
            reason = _URL_TEXT if text.startswith("Bad URL") else "bad request"
        return response.json({"error": reason}, exception.status_code)

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


class AnswerableRequest(Request):
    """A request whose target httptools cannot parse (`GET someone@x HTTP/1.1`)
    is refused with BadURL, a 400. But Sanic then builds a stand-in request
    from the same target to answer with, which raises BadURL again, and the
    connection is dropped with no answer at all. The stand-in (the only
    request built with method "NONE") gets target `/` instead, so the 400
    goes out; the refused target itself is neither kept nor logged."""

    def __init__(
        self,
        url_bytes: bytes,
        headers: Header,
        version: str,
        method: str,
        transport: TransportProtocol,
        app: Sanic,  # type: ignore[type-arg]
        head: bytes = b"",
        stream_id: int = 0,
    ) -> None:
        try:
            super().__init__(
                url_bytes, headers, version, method, transport, app, head, stream_id
            )
        except BadURL:
            if method != "NONE":
                raise
            super().__init__(
                b"/", headers, version, method, transport, app, head, stream_id
            )


def _cause(error: Exception) -> str:
    """The first line of a store error: PostgreSQL quotes values (a key, a
    parameter) only on the lines after it (DETAIL, CONTEXT)."""
    return str(error).partition("\n")[0][:200]


class DeadlineProtocol(HttpProtocol):
    """Two fixes to Sanic's timeouts.

    Sanic restarts its timeout clock on every byte received, so a sender
    trickling one byte a second is never cut off. Here the clock runs from
    a request's first byte: the whole request (and our answer) must fit in
    REQUEST_TIMEOUT; only an idle keep-alive connection restarts it.

    Sanic looks at the clock every half of the shortest timeout, so a
    deadline can pass unnoticed for that long (15 s were enforced after
    22.5 s). Here the next look is set for the next moment a deadline can
    pass, and moved forward when a restarted clock brings one forward."""

    __slots__ = ("_check_at",)

    def data_received(self, data: bytes) -> None:
        # `http`, not `_http`: on uvloop the first bytes can arrive before
        # the connection task has set the attribute.
        http = self.http
        idle = http is None or http.stage is Stage.IDLE
        started = self._time
        super().data_received(data)
        if idle:
            self._sooner()  # a new request's clock starts now
        else:
            self._time = started

    async def send(self, data: bytes) -> None:
        await super().send(data)
        self._sooner()  # writing restarts Sanic's clock (keep-alive after it)

    def _sooner(self) -> None:
        """Look earlier if the restarted clock's first deadline comes before
        the look already set (only when the timeouts differ)."""
        due = self._time + min(
            self.keep_alive_timeout, self.request_timeout, self.response_timeout
        )
        if due < getattr(self, "_check_at", 0.0):
            handle = self._callback_check_timeouts
            if handle is not None:
                handle.cancel()
            self._arm()

    def _arm(self) -> None:
        limits = (self.keep_alive_timeout, self.request_timeout, self.response_timeout)
        now = time.monotonic()
        elapsed = now - self._time
        ahead = [limit - elapsed for limit in limits if limit >= elapsed]
        # Just past the deadline: Sanic expires a connection only once the
        # time taken is strictly greater than the limit.
        delay = (min(ahead) if ahead else min(limits) / 2) + 0.01
        self._check_at = now + delay
        self._callback_check_timeouts = self.loop.call_later(delay, self.check_timeouts)

    def check_timeouts(self) -> None:
        # A body still arriving when time is up is the sender's slowness:
        # 408, not the 503 Sanic gives for a slow handler.
        http = self.http
        if (
            self._task
            and http is not None
            and http.stage is Stage.HANDLER
            and http.request_bytes_left
            and time.monotonic() - self._time > self.request_timeout
        ):
            http.exception = RequestTimeout("Request Timeout")
            self._task.cancel("request timeout")
            return
        before = self._callback_check_timeouts
        super().check_timeouts()
        after = self._callback_check_timeouts
        if after is not None and after is not before:
            # Nothing expired and Sanic set its next look half a timeout
            # away: look when the next deadline can pass instead.
            after.cancel()
            self._arm()
