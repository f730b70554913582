"""structlog is the one logging API: only service/logs.py touches stdlib
logging (to route libraries' records into the same JSON lines), and no log
call formats its message with `%` arguments."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    p
    for folder in ("service", "projections")
    for p in (ROOT / folder).rglob("*.py")
    # logs.py configures stdlib logging under structlog; the Sanic adapter
    # filters the stdlib loggers Sanic itself writes to.
    if p not in (ROOT / "service" / "logs.py", ROOT / "service/adapters/sanic.py")
)
LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}


def test_there_are_sources_to_check() -> None:
    assert len(SOURCES) > 50


def test_only_the_logs_module_imports_stdlib_logging() -> None:
    offenders = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "logging" or n.startswith("logging.") for n in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_log_calls_pass_fields_not_format_arguments() -> None:
    offenders = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in LEVELS
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "log"
            ):
                continue
            message = node.args[0] if node.args else None
            if len(node.args) > 1 or (
                isinstance(message, ast.Constant) and "%" in str(message.value)
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
