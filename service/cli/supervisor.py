"""A supervisor of named child processes, each stopping itself if the
supervisor dies: `loyalty ingress --workers N` (N ingress processes sharing
one port) and `loyalty run --split` (a front and a projector)."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import multiprocess

from service import logs

log = logs.get(__name__)
# Restart back-off: a child that dies young waits twice as long as the
# last time before the next start, up to MAX; one that ran STEADY seconds
# starts again at once (after FIRST).
FIRST, MAX, STEADY = 0.25, 10.0, 30.0
# A child's exit code that restarting cannot mend: it cannot listen (the
# port is another program's). The supervisor stops and exits with it.
CANNOT_LISTEN = 4


@dataclass(frozen=True)
class Child:
    """One supervised process: `target(supervisor pid, arg)`, by `name`."""

    name: str
    target: Callable[[int, Any], None]
    arg: Any


@dataclass
class _Running:
    child: Child
    process: multiprocessing.process.BaseProcess | None = None
    started: float = 0.0
    due: float = 0.0  # when a dead one starts again
    delay: float = FIRST  # the wait before its next restart


def supervise(children: Sequence[Child], *, shared_metrics: bool = False) -> int:
    """Run each of `children` in a process; restart any that dies, with
    back-off; stop them all on SIGTERM/SIGINT. `shared_metrics`: the
    children serve one port, so a scrape that reaches any of them reports
    all of them (one prometheus multiprocess directory)."""
    ctx = multiprocessing.get_context("spawn")
    stopping = False
    metrics_dir = None
    if shared_metrics:
        metrics_dir = tempfile.mkdtemp(prefix="loyalty-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def start(r: _Running) -> None:
        r.process = ctx.Process(
            target=r.child.target, args=(os.getpid(), r.child.arg), daemon=False
        )
        r.process.start()
        r.started = time.monotonic()
        log.info("started child", child=r.child.name, pid=r.process.pid)

    running = [_Running(child) for child in children]
    for r in running:
        start(r)
    code = 0
    try:
        while not stopping:
            time.sleep(0.1)
            now = time.monotonic()
            for r in running:
                if stopping:
                    break
                if r.process is None:  # dead, waiting out its back-off
                    if now >= r.due:
                        start(r)
                    continue
                if r.process.is_alive():
                    continue
                if r.process.exitcode == CANNOT_LISTEN:
                    log.error("child cannot listen; stopping", child=r.child.name)
                    stopping, code = True, CANNOT_LISTEN
                    break
                if now - r.started >= STEADY:
                    r.delay = FIRST
                wait, r.delay = r.delay, min(2 * r.delay, MAX)
                r.due = now + wait
                log.warning(
                    "child exited; restarting",
                    child=r.child.name,
                    pid=r.process.pid,
                    exitcode=r.process.exitcode,
                    restart_in_s=wait,
                )
                if metrics_dir and r.process.pid is not None:
                    # Its live gauges stop counting.
                    multiprocess.mark_process_dead(r.process.pid, metrics_dir)  # type: ignore[no-untyped-call]
                r.process = None
    finally:
        log.info("stopping children", children=[r.child.name for r in running])
        alive = [r.process for r in running if r.process is not None]
        for process in alive:
            process.terminate()
        for process in alive:
            process.join(10)
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return code


def stop_when_orphaned(parent: int, every: float = 0.5) -> None:
    """SIGTERM ourselves (a graceful stop) once `parent` is gone. A
    supervisor killed with SIGKILL cannot stop its children, and they would
    go on serving the port unsupervised, with nobody to restart or stop them."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()
