"""The kill test reads the log of a service it SIGKILLed: a line torn by a
kill joins its successor's first line, and both must still be counted."""

from __future__ import annotations

from testkit.killtest.run import log_entries


def test_joined_and_torn_lines_still_yield_every_whole_entry() -> None:
    text = (
        '{"event": "a", "level": "info"}{"event": "b", "level": "error"}\n'
        '{"event": "cut by a kill", "lev\n'
        "not json\n"
        '{"event": "c", "level": "warning"}\n'
    )
    assert [e["event"] for e in log_entries(text)] == ["a", "b", "c"]


def test_one_write_a_line_so_a_kill_cannot_tear_a_line() -> None:
    import structlog

    from service.logs import configure

    configure("INFO")
    factory = structlog.get_config()["logger_factory"]
    assert isinstance(factory, structlog.WriteLoggerFactory)
