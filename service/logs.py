"""Structured logs: one JSON object per line on stderr.

Personal data (emails, names, phone numbers) is never passed to a logger:
log customer ids and positions.
"""

from __future__ import annotations

import logging
import sys

import structlog


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


def configure(level: str = "INFO") -> None:
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        level = "INFO"  # the settings object reports the bad value itself
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Libraries' stdlib logging comes out as the same JSON lines.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    handler.addFilter(RedactProtocolErrors())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level]
        ),
        cache_logger_on_first_use=True,
    )


def get(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
