"""The process's resident memory, for tests and benchmarks of memory bounds."""

from __future__ import annotations

import os


def rss_bytes(pid: int | None = None) -> int:
    """Current resident set size of `pid` (this process by default), Linux."""
    path = f"/proc/{pid or os.getpid()}/statm"
    with open(path) as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")
