"""What tests and the bench ask about processes: CPU, memory, children,
environments and listening sockets, through psutil."""

from __future__ import annotations

import contextlib
from pathlib import Path

import psutil

from testkit.killtest.run import log_entries


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def running(pid: int) -> bool:
    """Running, and not a zombie waiting for a parent that will never reap it."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def parent(pid: int) -> int:
    return psutil.Process(pid).ppid()


def cmdline(pid: int) -> bytes:
    """The command line, NUL-separated as the kernel keeps it."""
    try:
        return b"".join(a.encode() + b"\0" for a in psutil.Process(pid).cmdline())
    except psutil.NoSuchProcess as e:
        raise ProcessLookupError(pid) from e


def environ_value(pid: int, name: str) -> str | None:
    """One variable of a process's environment (as it was started)."""
    return psutil.Process(pid).environ().get(name)


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak), in kB.

    psutil gives the current RSS but not the kernel's high-water mark on
    Linux, so the peak is the one figure still read from /proc/PID/status.
    """
    out = {"VmRSS": psutil.Process(pid).memory_info().rss // 1024}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == "VmHWM":
            out[key] = int(value.split()[0])
    return out


def descendants(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and its live descendants."""
    total = 0.0
    for each in [pid, *descendants(pid)]:
        with contextlib.suppress(psutil.Error):  # exited meanwhile
            total += cpu_seconds(each)
    return total


def spawned_children(pid: int) -> list[int]:
    """The processes `pid` started with multiprocessing's spawn (ingress
    --workers), not its resource tracker, which is its child too."""
    found = []
    with contextlib.suppress(psutil.NoSuchProcess):
        for child in psutil.Process(pid).children():
            with contextlib.suppress(psutil.Error):
                if any("spawn_main" in a for a in child.cmdline()):
                    found.append(child.pid)
    return found


def listeners(port: int) -> int:
    """Sockets listening on `port`, IPv4 and IPv6 (one per SO_REUSEPORT
    process and address family)."""
    return sum(
        1
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
    )


def rss_bytes(pid: int | None = None) -> int:
    """Current resident set size of `pid` (this process by default)."""
    return psutil.Process(pid).memory_info().rss


class NoChildStarted(LookupError):
    """The supervisor's log has not started the child asked for."""


def started_child(log_text: str, name: str) -> int:
    """The pid of the newest start of supervised child `name`, from the
    supervisor's log; NoChildStarted (with the log) before its first
    "started child" line."""
    pids = [
        int(e["pid"])
        for e in log_entries(log_text)
        if e.get("event") == "started child" and e.get("child") == name
    ]
    if not pids:
        raise NoChildStarted(f"no 'started child' line for {name} in:\n{log_text}")
    return pids[-1]
