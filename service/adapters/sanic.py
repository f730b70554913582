"""Every use of Sanic's internals, in one place.

Written for Sanic 25.12.1. On an upgrade, re-check (the tests in
tests/integration/test_library_adapters.py fail when these change):

- `HttpProtocol`'s `_time` (when its timeout clock started),
  `_callback_check_timeouts` (the timer handle of its next look) and `_task`
  (the connection's task), and that `check_timeouts` still re-arms itself
  with `loop.call_later`: DeadlineProtocol replaces how the clock runs;
- that a request whose target does not parse is still answered through a
  stand-in request built with method "NONE" (AnswerableRequest);
- the texts of the BadRequest errors (`unreadable_reason`) and of the log
  lines RedactProtocolErrors rewrites (sanic/http/http1.py,
  sanic/handlers/error.py, sanic/app.py);
- that `create_server` still reads port 0 as its default port (8000), not
  as any free port: `start_server` binds port 0 itself.
"""

from __future__ import annotations

import logging
import socket
import time
from importlib.metadata import version
from typing import Any

from sanic import Request, Sanic
from sanic.compat import Header
from sanic.exceptions import BadURL, RequestTimeout, SanicException
from sanic.http import Stage
from sanic.models.protocol_types import TransportProtocol
from sanic.server.protocols.http_protocol import HttpProtocol

WRITTEN_FOR = "25.12.1"
PRIVATE_SLOTS = ("_time", "_task", "_callback_check_timeouts")


def problems() -> list[str]:
    """What differs from the Sanic this module was written for."""
    found = []
    installed = version("sanic")
    if installed != WRITTEN_FOR:
        found.append(
            f"sanic {installed} installed, adapters written for {WRITTEN_FOR}: "
            "re-check service/adapters/sanic.py"
        )
    slots = {s for cls in HttpProtocol.__mro__ for s in getattr(cls, "__slots__", ())}
    found += [
        f"HttpProtocol has no {name}" for name in PRIVATE_SLOTS if name not in slots
    ]
    return found


# Sanic refuses a request it cannot read with BadRequest (BadURL is the same
# class), whatever the cause; its text tells them apart. Ours is fixed, as
# Sanic's may quote the target.
_URL_TEXT = "request target is not a valid URL"
_UNREADABLE = {
    "Bad chunked encoding": "invalid chunked framing in the request body",
    "Bad content-length": "invalid Content-Length header",
    "Bad Request": "request head is not valid HTTP/1.1",
    "URL may only contain US-ASCII characters.": _URL_TEXT,
}


def unreadable_reason(error: SanicException) -> str:
    """Our fixed text for Sanic's refusal of a request it cannot read."""
    text = str(error)
    reason = _UNREADABLE.get(text)
    if reason is None:
        reason = _URL_TEXT if text.startswith("Bad URL") else "bad request"
    return reason


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


class RedactProtocolErrors(logging.Filter):
    """Sanic quotes the request in some log lines, and a request may hold
    anything (an email in a URL, an id in a query): a traceback of a
    request it cannot parse quotes the request line, a client gone mid-
    request is logged with its URL, an error handler's failure with the URL.
    Keep each event, drop the quote."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        if msg.startswith("protocol.") and record.exc_info:
            error = record.exc_info[1]
            record.msg = f"{record.msg}: {type(error).__name__}"
            record.exc_info = None
            record.exc_text = None
        elif not record.name.startswith("sanic"):
            pass
        elif msg.startswith("Request: ") and msg.endswith("Transport is closed."):
            record.msg, record.args = "request stopped: the client hung up", ()
        elif msg.endswith("uri: %s"):
            # The traceback's last line is the error's text: keep its type.
            error = record.exc_info[1] if record.exc_info else None
            record.msg = "an error while handling a request: %s"
            record.args = (type(error).__name__,)
            record.exc_info = record.exc_text = None
        elif isinstance(record.msg, BaseException) or msg.startswith(
            "The error response will not be sent"
        ):
            error = record.msg if isinstance(record.msg, BaseException) else None
            record.msg = "an error after the answer began: %s"
            record.args = (type(error).__name__ if error else "see above",)
            record.exc_info = record.exc_text = None
        return True


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
        await super().send(data)  # type: ignore[no-untyped-call]
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
        super().check_timeouts()  # type: ignore[no-untyped-call]
        after = self._callback_check_timeouts
        if after is not None and after is not before:
            # Nothing expired and Sanic set its next look half a timeout
            # away: look when the next deadline can pass instead.
            after.cancel()
            self._arm()


async def start_server(
    app: Sanic,  # type: ignore[type-arg]
    host: str | None,
    port: int | None,
    sock: Any = None,
) -> tuple[Any, int]:
    """Serve `app` on the running loop (Sanic's low-level server API, which
    leaves the loop and the process to us); answers the server and its port.
    Port 0 is any free port, as the operating system gives it."""
    if sock is None and port == 0:
        # Sanic would listen on its default port (8000) instead, where a
        # second such process (or anything else there) makes it fail.
        sock = any_free_port(host)
    server = await app.create_server(
        host=None if sock else host,
        port=None if sock else port,
        sock=sock,
        protocol=DeadlineProtocol,
        return_asyncio_server=True,
    )
    assert server is not None and server.server is not None
    await server.startup()
    await server.before_start()
    await server.start_serving()
    await server.after_start()
    return server, server.server.sockets[0].getsockname()[1]


def any_free_port(host: str | None) -> socket.socket:
    """A listening socket on `host` at a port the operating system picks."""
    family, _, _, _, address = socket.getaddrinfo(
        host or "127.0.0.1", 0, type=socket.SOCK_STREAM
    )[0]
    sock = socket.create_server(address, family=family, backlog=1024)
    sock.setblocking(False)
    return sock


async def stop_server(server: Any) -> None:
    """Stop what `start_server` started, running the app's stop listeners."""
    await server.before_stop()
    server.close()
    await server.wait_closed()
    await server.after_stop()
