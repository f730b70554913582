"""Each setting is declared once, on its field: the variable, parser,
default, shown default and meaning cannot disagree."""

from __future__ import annotations

import dataclasses
import re

from service.config import Settings, declared


def test_every_field_is_declared_with_a_distinct_variable() -> None:
    names = [s.env for _, s in declared()]
    assert len(names) == len(dataclasses.fields(Settings))
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]*", n) for n in names)


def test_a_shown_literal_default_parses_to_the_default() -> None:
    """Where the README shows a value, reading that value gives the default."""
    checked = 0
    for f, s in declared():
        literal = re.fullmatch(r"`([^`]*)`", s.shown_default)
        if literal:
            assert s.parse(s.env, literal.group(1)) == f.default, s.env
            checked += 1
        elif f.default is None:
            assert s.shown_default.startswith("unset") or "`" in s.shown_default
    assert checked >= 10


def test_each_variable_reaches_its_own_field() -> None:
    env = {"WEBHOOK_SECRET": "a", "HTTP_PORT": "1234", "GRPC_MAX_CALLS": "7"}
    s = Settings.from_environ({**env, "LOG_LEVEL": "debug", "DATA_DIR": "/d"})
    assert (s.http_port, s.grpc_max_calls, s.log_level) == (1234, 7, "DEBUG")
    assert str(s.data_dir) == "/d"
    assert s.grpc_port == 50051  # unset: the declared default


def test_secret_settings_stay_out_of_repr() -> None:
    shown = repr(
        Settings.from_environ(
            {"WEBHOOK_SECRET": "hunter2", "DATABASE_URL": "postgresql://u:pw@h/db"}
        )
    )
    assert "hunter2" not in shown and "pw@" not in shown
