"""The access log: one line per HTTP request or gRPC call, rate-limited.

Under load a line per request would cost more than the request; each
process logs at most `ACCESS_LOG_LIMIT` lines a second (per protocol) and
counts the rest in the next line's `suppressed`, so a reader knows how many
it did not see. 0 turns the access log off. Refused webhooks have their own
line, never limited (service/webhook.py).

A line holds the method or route (never the raw target, which may quote an
email), the status, the duration, the request id and a `trace_id`: the
current OpenTelemetry span's trace, null when tracing is off (or the API is
not installed). Never headers, bodies or peers.
"""

from __future__ import annotations

import functools
import importlib
import re
import time
import uuid
from typing import Any

from service import logs

# A caller's request id is kept when it looks like one (a UUID, hex, a
# short token); anything else could be a value of theirs, so we mint one.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
REQUEST_ID_HEADER = "x-request-id"


def request_id(given: str | None) -> str:
    """The caller's `x-request-id` when it is a plain token, else a new one."""
    if given and _REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


@functools.cache
def _trace_api() -> Any:
    """opentelemetry.trace if installed, looked up once (not at import)."""
    try:
        return importlib.import_module("opentelemetry.trace")
    except ImportError:
        return None


def trace_id() -> str | None:
    """The current span's trace id (32 hex digits), None without one."""
    api = _trace_api()
    if api is None:
        return None
    context = api.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class AccessLog:
    """A token bucket of `per_second` lines, refilled continuously."""

    def __init__(self, name: str, per_second: int) -> None:
        self.enabled = per_second > 0
        self._rate = float(per_second)
        self._tokens = float(per_second)
        self._at = time.monotonic()
        self._suppressed = 0
        self._log = logs.get(name)

    def line(self, event: str, **fields: Any) -> bool:
        """Log `event` with `fields` if the budget allows; True if logged."""
        if not self.take():
            return False
        self.emit(event, **fields)
        return True

    def take(self) -> bool:
        """Spend one line of the budget; False (and counted) if none is left.
        For a caller whose fields cost something to gather: take, then emit."""
        if not self.enabled:
            return False
        now = time.monotonic()
        self._tokens = min(self._rate, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1.0:
            self._suppressed += 1
            return False
        self._tokens -= 1.0
        return True

    def emit(self, event: str, **fields: Any) -> None:
        """The line itself, after a successful `take`."""
        if self._suppressed:
            fields["suppressed"] = self._suppressed
            self._suppressed = 0
        self._log.info(event, **fields)


def millis(started: float) -> float:
    """Milliseconds since `started` (a perf_counter reading), to 0.01 ms."""
    return round((time.perf_counter() - started) * 1000, 2)
