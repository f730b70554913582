"""A reader has only the clone: everything a file refers them to is in it.

What the service promises is written in docs/ and the protos' comments, and
a reader should find every reference there or in the code. So no tracked
file may send them to a document they cannot open (a brief kept beside a
checkout, a tracker's issue numbers), to a record of how the code came to
be written rather than of what it does, or to one machine's paths. The
other half, that every link and path the docs name exists, is
tests/unit/test_docs_links.py.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
THIS_FILE = Path(__file__).resolve().relative_to(ROOT).as_posix()

# (what it is, pattern). Each is narrow enough that words describing the
# software (a PostgreSQL session, an event store contract test) do not match.
FORBIDDEN: list[tuple[str, re.Pattern[str]]] = [
    (
        "a brief outside the repository",
        re.compile(r"\.\./shared\b|\bshared/CON" r"TRACT"),
    ),
    ("the outside brief by name", re.compile(r"\bCON" r"TRACT\b")),
    (
        "a section of the outside brief",
        re.compile(r"\bcontract(?:\.md|,? section \d|'s section| \(section)", re.I),
    ),
    ("an issue number", re.compile(r"\bissues? #?\d+", re.I)),
    ("an issue or pull request number", re.compile(r"(?<![\w&/])#\d+\b")),
    (
        "how the code came to be written (a work session)",
        re.compile(
            r"\b(?:work|working|earlier|later|first|second|third|fourth|previous"
            r"|optimi[sz]ation)\s+sessions?\b"
            r"|\b(?:other|another)\s+sessions?\s+(?:ran|run|running|were|was)\b"
            r"|\bfiled by a session\b|\bothers ran\b",
            re.I,
        ),
    ),
    ("one machine's path", re.compile(r"(?<![\w.~])/(?:work|tmp|home|Users|root)/")),
]

# Directories that are generated or installed, never tracked.
_NOT_SOURCE = {".git", ".venv", "gen", "node_modules", "var", "out", "__pycache__"}


def tracked_files() -> list[str]:
    """The files a clone holds: git's list, or the tree without generated
    directories where there is no git checkout (an unpacked archive)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
        return [name for name in out.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        files = []
        for directory, dirs, names in os.walk(ROOT):
            dirs[:] = [d for d in dirs if d not in _NOT_SOURCE]
            for name in names:
                files.append((Path(directory) / name).relative_to(ROOT).as_posix())
        return files


def offences(text: str) -> list[tuple[int, str, str]]:
    """(line number, what, the line) for every forbidden reference in `text`."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for what, pattern in FORBIDDEN:
            if pattern.search(line):
                found.append((number, what, line.strip()[:160]))
    return found


def test_no_tracked_file_refers_outside_the_repository() -> None:
    files = tracked_files()
    assert len(files) > 50, files  # the listing itself worked
    report = []
    for name in files:
        if name == THIS_FILE:
            continue  # it spells the patterns out
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary, or deleted in the work tree
        report += [f"{name}:{n}: {what}: {line}" for n, what, line in offences(text)]
    assert not report, "\n".join(report)


# Each example is written in pieces joined at run time, so that this file
# holds no outside reference of its own.
OUTSIDE_REFERENCES = [
    "".join(pieces)
    for pieces in [
        ("The outside contract is `..", "/sha", "red/CONTR", "ACT.md`."),
        ("One example per rule of CONTR", "ACT section 4."),
        ("an oracle written from the cont", "ract (section 3)"),
        ("Fuzzing the ingress (iss", "ue 7, item 3)."),
        ("Iss", "ue 6 sets five targets."),
        ("see #", "7 for the discussion"),
        ("What changed since the second ses", "sion's run"),
        ("### Earlier (first ses", "sion)"),
        ("Other ses", "sions ran test suites beside it."),
        ("Measured by an optimisation ses", "sion."),
        ("others ran the suite at the ", "same time"),
        ("pip install --target /t", "mp/pgx/site"),
        ("data dir /t", "mp/killtest-a6ljxzvu"),
        ("cd /wo", "rk/main && make test"),
        ("/ho", "me/alice/checkout"),
    ]
]


@pytest.mark.parametrize("line", OUTSIDE_REFERENCES)
def test_each_kind_of_outside_reference_is_caught(line: str) -> None:
    assert offences(line), line


@pytest.mark.parametrize(
    "line",
    [
        "when the holder dies its session ends and the standby takes over",
        "a session-level advisory lock",
        'self._conn.execute("SELECT 1")  # still our session, still held',
        "start_new_session=True,",
        '@pytest.fixture(scope="session")',
        "class EventStoreContract:",
        '"""The generated protobuf modules match the documented gRPC API."""',
        "tests/unit/test_proto_contract.py",
        'raise InvalidArgument("page_token", "is not a token this API issued")',
        "def test_smoke_run_fills_every_row(tmp_path: Path) -> None:",
        'loyalty dead-letters dismiss 584 --note "sender bug, ticket 42"',
        "See docs/webhooks.md and docs/read-models.md.",
        "DATA_DIR=./var and ~/tmp/scratch",
    ],
)
def test_words_that_describe_the_software_are_not_caught(line: str) -> None:
    assert not offences(line), line
