"""Modules a reader can hold in their head: none over 400 lines, and test
modules that import no other test module (shared helpers live in testkit/
or a conftest.py, where a reader looks for them)."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
LIMIT = 400


def python_files() -> list[str]:
    """Every .py file of the repository, new ones included; what git ignores
    (the venv, generated protobuf code) left out."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [name for name in out.splitlines() if (ROOT / name).exists()]


def too_long(names: list[str], limit: int = LIMIT) -> list[str]:
    counts = {n: len((ROOT / n).read_bytes().splitlines()) for n in names}
    return [f"{n}: {c} lines" for n, c in sorted(counts.items()) if c > limit]


def test_no_module_is_over_400_lines() -> None:
    files = python_files()
    assert len(files) > 100, files  # the listing itself worked
    assert not too_long(files), "split by what they hold:\n" + "\n".join(
        too_long(files)
    )


def test_the_size_check_sees_a_long_module() -> None:
    lines = len((ROOT / "service/config.py").read_bytes().splitlines())
    assert too_long(["service/config.py"], limit=10) == [
        f"service/config.py: {lines} lines"
    ]


def imported_test_modules(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found += [n for n in names if n == "tests" or n.startswith("tests.")]
    return found


def test_test_modules_import_no_test_module() -> None:
    offenders = [
        f"{name}: {', '.join(imported_test_modules((ROOT / name).read_text()))}"
        for name in python_files()
        if name.startswith("tests/")
        and imported_test_modules((ROOT / name).read_text())
    ]
    assert not offenders, "\n".join(offenders)


def test_an_import_of_a_test_module_is_seen() -> None:
    assert imported_test_modules(
        "from tests.unit.test_x import helper\nimport tests.conftest\nimport testkit"
    ) == ["tests.unit.test_x", "tests.conftest"]
