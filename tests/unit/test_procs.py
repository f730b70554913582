"""The kit's process figures (psutil): listeners of both address families,
children, environments, and a clear error for a process that is gone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from testkit import procs


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        env={**os.environ, "PROCS_TEST_MARK": "here"},
    )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(
    ("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]
)
def test_listeners_count_ipv4_and_ipv6(family: socket.AddressFamily, host: str) -> None:
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.bind((host, 0))
    except OSError as e:
        pytest.skip(f"no {host} here: {e}")
    with sock:
        port = sock.getsockname()[1]
        assert procs.listeners(port) == 0  # bound, not yet listening
        sock.listen()
        assert procs.listeners(port) == 1


def test_a_child_is_seen_with_its_environment(
    child: subprocess.Popen[bytes],
) -> None:
    me = os.getpid()
    assert child.pid in procs.descendants(me)
    assert procs.parent(child.pid) == me
    assert procs.running(child.pid)
    assert procs.environ_value(child.pid, "PROCS_TEST_MARK") == "here"
    assert procs.environ_value(child.pid, "PROCS_TEST_ABSENT") is None
    assert b"time.sleep(30)" in procs.cmdline(child.pid)
    # Our own CPU first: it only grows, so the tree's, read after, is at least it.
    own = procs.cpu_seconds(me)
    assert procs.tree_cpu_seconds(me) >= own > 0
    assert procs.memory_kb(me)["VmRSS"] * 1024 <= procs.rss_bytes() * 2


def test_a_process_that_is_gone(child: subprocess.Popen[bytes]) -> None:
    child.kill()
    child.wait()
    assert not procs.running(child.pid)
    with pytest.raises(OSError):
        procs.cmdline(child.pid)
