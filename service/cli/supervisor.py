"""`loyalty ingress --workers N`: N ingress processes sharing one port, kept
running by a supervisor, each stopping itself if the supervisor dies."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from prometheus_client import multiprocess

from service import logs

A = TypeVar("A")
log = logs.get(__name__)


def supervise(target: Callable[[int, A], None], arg: A, count: int) -> int:
    """Run `count` copies of `target(our pid, arg)` in child processes sharing
    the port; restart any that dies; stop them all on SIGTERM/SIGINT."""
    ctx = multiprocessing.get_context("spawn")
    stopping = False
    # The children share one port; their metrics go to one directory so a
    # scrape that reaches any child reports all of them.
    metrics_dir = tempfile.mkdtemp(prefix="loyalty-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def spawn() -> multiprocessing.process.BaseProcess:
        child = ctx.Process(target=target, args=(os.getpid(), arg), daemon=False)
        child.start()
        return child

    children = [spawn() for _ in range(count)]
    try:
        while not stopping:
            time.sleep(0.2)
            for i, child in enumerate(children):
                if not child.is_alive() and not stopping:
                    log.warning(
                        "ingress process exited; restarting",
                        pid=child.pid,
                        exitcode=child.exitcode,
                    )
                    if child.pid is not None:  # its live gauges stop counting
                        multiprocess.mark_process_dead(child.pid, metrics_dir)  # type: ignore[no-untyped-call]
                    children[i] = spawn()
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.join(10)
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def stop_when_orphaned(parent: int, every: float = 0.5) -> None:
    """SIGTERM ourselves (a graceful stop) once `parent` is gone. A
    supervisor killed with SIGKILL cannot stop its children, and they would
    go on serving the port unsupervised, with nobody to restart or stop them."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()
