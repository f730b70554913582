"""Asking before an irreversible command: interactively on a terminal,
`--yes` for scripts (which have no terminal to answer on)."""

from __future__ import annotations

import sys
from typing import TextIO


def confirmed(
    what: str,
    answer: str,
    *,
    yes: bool,
    stdin: TextIO | None = None,
    stderr: TextIO | None = None,
) -> bool:
    """True if the operator confirms `what` by typing `answer` back (or gave
    `--yes`). Without a terminal and without `--yes`: refused, with a line
    saying how to confirm."""
    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr
    if yes:
        return True
    if not stdin.isatty():
        print(
            f"loyalty: {what} cannot be undone; no terminal to confirm on: "
            "pass --yes to confirm",
            file=stderr,
        )
        return False
    print(f"{what} cannot be undone.", file=stderr)
    print(f"Type {answer!r} to confirm: ", end="", file=stderr, flush=True)
    typed = stdin.readline().strip()
    if typed != answer:
        print("loyalty: not confirmed; nothing was done", file=stderr)
        return False
    return True
