"""Reading /proc (Linux): CPU, memory, children, environments, listeners."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def _stat_fields(pid: int) -> list[str]:
    # pid (comm) state ppid ...; comm may hold spaces, so split after ")".
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def running(pid: int) -> bool:
    """Running, and not a zombie waiting for a parent that will never reap it."""
    try:
        return _stat_fields(pid)[0] != "Z"
    except OSError:
        return False


def parent(pid: int) -> int:
    return int(_stat_fields(pid)[1])


def cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def environ_value(pid: int, name: str) -> str | None:
    """One variable of a process's environment (as it was started)."""
    key = name.encode() + b"="
    for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        if item.startswith(key):
            return item[len(key) :].decode()
    return None


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) from /proc/PID/status, in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo:
        pid = todo.pop()
        try:
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        found += map(int, kids)
        todo += map(int, kids)
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its live descendants."""
    total = 0.0
    for each in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):  # exited meanwhile
            total += cpu_seconds(each)
    return total


def spawned_children(pid: int) -> list[int]:
    """The processes `pid` started with multiprocessing's spawn (ingress
    --workers), not its resource tracker, which is its child too."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if parent(int(entry.name)) != pid:
                    continue
                if b"spawn_main" in cmdline(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def listeners(port: int) -> int:
    """Sockets listening on `port` (one per SO_REUSEPORT process)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(
        1
        for r in rows
        if r.split()[1].endswith(f":{port:04X}") and r.split()[3] == "0A"
    )


def rss_bytes(pid: int | None = None) -> int:
    """Current resident set size of `pid` (this process by default), Linux."""
    path = f"/proc/{pid or os.getpid()}/statm"
    with open(path) as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")
