"""Sanic's log lines that quote a request lose the quote, keep the event."""

from __future__ import annotations

import logging
import sys

import pytest

from service.adapters.sanic import RedactProtocolErrors

CANARY = "someone.private@example.com"


def _error(text: str) -> tuple:
    try:
        raise ValueError(text)
    except ValueError:
        return sys.exc_info()


def rendered(name: str, msg: object, args: tuple = (), exc_info: object = None) -> str:
    record = logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, exc_info)  # type: ignore[arg-type]
    assert RedactProtocolErrors().filter(record)
    return logging.Formatter("%(message)s").format(record)


@pytest.mark.parametrize(
    ("name", "msg", "args", "exc_info", "kept"),
    [
        (
            "sanic.error",
            "protocol.data_received",
            (),
            _error(f"Bad URL: {CANARY}"),
            "protocol.data_received: ValueError",
        ),
        (
            "sanic.root",
            f"Request: POST http://x/webhooks/jericommerce?e={CANARY} stopped. "
            "Transport is closed.",
            (),
            None,
            "request stopped: the client hung up",
        ),
        (
            "sanic.error",
            "Exception occurred while handling uri: %s",
            (f"'http://x/{CANARY}'",),
            _error(CANARY),
            "an error while handling a request: ValueError",
        ),
        (
            "sanic.error",
            'Exception raised in exception handler "%s" for uri: %s',
            ("failed", f"'http://x/{CANARY}'"),
            _error(CANARY),
            "an error while handling a request: ValueError",
        ),
        (
            "sanic.error",
            ValueError(CANARY),
            (),
            None,
            "an error after the answer began: ValueError",
        ),
        (
            "sanic.root",
            "The error response will not be sent to the client for the "
            f'following exception:"{CANARY}". A previous response has at least '
            "partially been sent.",
            (),
            None,
            "an error after the answer began: see above",
        ),
    ],
)
def test_sanic_lines_that_quote_a_request_lose_the_quote(
    name: str, msg: object, args: tuple, exc_info: object, kept: str
) -> None:
    line = rendered(name, msg, args, exc_info)
    assert CANARY not in line
    assert line == kept


def test_other_lines_are_untouched() -> None:
    assert rendered("service.webhook", "answering %s", (503,)) == "answering 503"
    assert rendered("sanic.root", "KeepAlive Timeout. Closing connection.") == (
        "KeepAlive Timeout. Closing connection."
    )
