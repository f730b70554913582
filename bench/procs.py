"""Servers under test as child processes, pinned to the server core (or, in
the PostgreSQL mode, to no core at all)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench.data import SECRET
from bench.tools import pinned
from testkit import procs as proc_info
from testkit.launch import (
    ROOT,
    NotReady,
    free_port,
    grpc_ok,
    http_ok,
    spawn,
    wait_until,
)

__all__ = ["ROOT", "Server", "start_bare_grpc", "start_bare_sanic", "start_service"]


@dataclass
class Server:
    """A started child process: its ports, its log, and how to stop it."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    http_port: int = 0
    grpc_port: int = 0
    data_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)  # when spawned
    group: bool = False  # leads its own process group (it forks workers)
    tree: bool = False  # a supervisor: its CPU is its children's too
    ingress_pid: int = 0  # a supervised shape's ingress, on the server core

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def memory_kb(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak) from /proc/PID/status, in kB."""
        return proc_info.memory_kb(self.pid)

    def cpu_seconds(self) -> float:
        if self.tree:
            return proc_info.tree_cpu_seconds(self.pid)
        return proc_info.cpu_seconds(self.pid)

    def descendants(self) -> list[int]:
        return proc_info.descendants(self.pid)

    def tree_cpu_seconds(self) -> float:
        """CPU of the process and its live descendants (ingress --workers)."""
        return proc_info.tree_cpu_seconds(self.pid)

    def metrics(self) -> dict[str, float]:
        """The service's Prometheus samples without labels, by name."""
        with urllib.request.urlopen(self.http_url + "/metrics", timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if line and not line.startswith("#") and "{" not in name:
                out[name] = float(value)
        return out

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: what a crash looks like (to the whole group, if it leads one,
        so no forked worker survives its supervisor)."""
        if self.group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        elif self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path else ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _spawn(
    name: str,
    argv: list[str],
    core: int | None,
    log_dir: Path,
    env: dict[str, str] | None = None,
    group: bool = False,
) -> tuple[subprocess.Popen[bytes], Path]:
    log_path = log_dir / f"{name}.log"
    argv = pinned([sys.executable, *argv], core)
    return spawn(argv, log_path, env, new_session=group), log_path


def _wait(server: Server, ready: Callable[[], bool], timeout: float = 60.0) -> Server:
    try:
        wait_until(ready, server.proc, timeout, server.log_tail)
    except NotReady as e:
        server.stop()
        raise RuntimeError(f"{server.name} {e}") from None
    return server


def start_service(
    data_dir: Path,
    core: int | None,
    log_dir: Path,
    name: str,
    extra_env: Mapping[str, str] | None = None,
    *,
    split: bool = False,
    writer: bool = False,
) -> Server:
    """`python -m service run` (what `make run` runs) on SQLite in data_dir;
    `extra_env`: e.g. the OTEL_* variables that turn tracing on; `split`:
    `run --split`, a supervisor and its two children (its own process group,
    so a SIGKILL reaches them all); with `writer` too, `run --split
    --writer` (a third child, the store's writer process)."""
    http, rpc = free_port(), free_port()
    env = {
        "WEBHOOK_SECRET": SECRET,
        "DATA_DIR": str(data_dir),
        "HTTP_PORT": str(http),
        "GRPC_PORT": str(rpc),
        **(extra_env or {}),
    }
    argv = ["-m", "service", "run", *(["--split"] if split else [])]
    argv += ["--writer"] if split and writer else []
    proc, log = _spawn(name, argv, core, log_dir, env, group=split)
    server = Server(name, proc, log, http, rpc, data_dir, env, group=split, tree=split)

    def ready() -> bool:
        return http_ok(server.http_url + "/readyz") and grpc_ok(server.grpc_target)

    return _wait(server, ready)


def start_api(
    data_dir: Path, core: int, log_dir: Path, name: str, module: str = "service"
) -> Server:
    """`python -m MODULE api` on SQLite in data_dir: the gRPC API alone, no
    ingress and no projection worker (`module` runs a variant of it, such as
    a baseline that turns one feature off)."""
    rpc = free_port()
    env = {
        "WEBHOOK_SECRET": SECRET,
        "DATA_DIR": str(data_dir),
        "HTTP_PORT": str(free_port()),
        "GRPC_PORT": str(rpc),
        "LOG_LEVEL": "WARNING",
    }
    proc, log = _spawn(name, ["-m", module, "api"], core, log_dir, env)
    server = Server(name, proc, log, grpc_port=rpc, data_dir=data_dir, env=env)
    return _wait(server, lambda: grpc_ok(server.grpc_target))


def _ingress_env(data_dir: Path, http: int) -> dict[str, str]:
    return {
        "WEBHOOK_SECRET": SECRET,
        "DATA_DIR": str(data_dir),
        "HTTP_PORT": str(http),
        "GRPC_PORT": str(free_port()),
        "METRICS_PORT": str(free_port()),  # the writer's probes, if any
    }


def start_ingress_only(data_dir: Path, core: int, log_dir: Path, name: str) -> Server:
    """`python -m service ingress` on SQLite in data_dir: the webhook app and
    the group commit, with no projection worker and no gRPC API (a step of
    the P1 ladder)."""
    http = free_port()
    env = _ingress_env(data_dir, http)
    proc, log = _spawn(name, ["-m", "service", "ingress"], core, log_dir, env)
    server = Server(name, proc, log, http, 0, data_dir, env)
    return _wait(server, lambda: http_ok(server.http_url + "/readyz"))


def start_ingress_writer(
    data_dir: Path, core: int, other: int, log_dir: Path, name: str
) -> Server:
    """`python -m service ingress --writer` on SQLite in data_dir: an ingress
    process on `core` that sends its envelopes to the store's writer
    process, which runs with the supervisor on `other` (the way PostgreSQL
    runs on a core of its own in `--pg`). The server's CPU is the whole
    tree's; `ingress_pid` is the ingress process's."""
    http = free_port()
    env = _ingress_env(data_dir, http)
    argv = ["-m", "service", "ingress", "--writer"]
    proc, log = _spawn(name, argv, other, log_dir, env, group=True)
    server = Server(name, proc, log, http, 0, data_dir, env, group=True, tree=True)
    _wait(server, lambda: http_ok(server.http_url + "/readyz"))
    server.ingress_pid = proc_info.started_child(
        log.read_text(errors="replace"), "ingress-0"
    )
    os.sched_setaffinity(server.ingress_pid, {core})
    return server


def start_webhook_handler(
    core: int, log_dir: Path, commit_ms: float | None = None
) -> Server:
    """The service's webhook app answering without storing (a P1 ladder step);
    with `commit_ms`, through the group commit to a store that only waits."""
    port = free_port()
    argv = ["-m", "bench.baselines.webhook_handler", str(port), SECRET]
    name = "webhook_handler"
    if commit_ms is not None:
        argv += ["--commit-ms", str(commit_ms)]
        name = "webhook_groupcommit"
    proc, log = _spawn(name, argv, core, log_dir)
    server = Server(name, proc, log, http_port=port)
    return _wait(server, lambda: http_ok(server.http_url + "/readyz"))


def start_bare_sanic(core: int | None, log_dir: Path, loop: str = "uvloop") -> Server:
    port = free_port()
    argv = ["-m", "bench.baselines.bare_sanic", str(port), "--loop", loop]
    proc, log = _spawn(f"bare_sanic_{loop}", argv, core, log_dir)
    server = Server(f"bare_sanic_{loop}", proc, log, http_port=port)
    return _wait(server, lambda: http_ok(server.http_url + "/healthz"))


def start_bare_grpc(core: int, log_dir: Path, samples: Path) -> Server:
    port = free_port()
    argv = ["-m", "bench.baselines.bare_grpc", str(port), str(samples)]
    proc, log = _spawn("bare_grpc", argv, core, log_dir)
    server = Server("bare_grpc", proc, log, grpc_port=port)
    return _wait(server, lambda: grpc_ok(server.grpc_target))


def start_pg_role(
    role: str,
    database_url: str,
    log_dir: Path,
    name: str,
    workers: int = 1,
    core: int | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> Server:
    """`python -m service ROLE` on PostgreSQL, on `core` (default: none in
    particular), with `extra_env` besides the bench's settings. The ingress
    serves HTTP (with `--workers N`, N processes on one port); the worker
    serves only /metrics; the api serves gRPC."""
    from bench.pgdb import master_key_file

    http, rpc = free_port(), free_port()
    env = {
        "WEBHOOK_SECRET": SECRET,
        "DATABASE_URL": database_url,
        "MASTER_KEY_FILE": str(master_key_file()),
        "HTTP_PORT": str(http),
        "GRPC_PORT": str(rpc),
        "METRICS_PORT": str(http),
        **(extra_env or {}),
    }
    argv = ["-m", "service", role]
    if workers > 1:
        argv += ["--workers", str(workers)]
    proc, log = _spawn(name, argv, core, log_dir, env, group=workers > 1)
    server = Server(name, proc, log, http, rpc, env=env, group=workers > 1)

    def ready() -> bool:
        if role == "api":
            return grpc_ok(server.grpc_target)
        if role == "worker":
            return http_ok(server.http_url + "/metrics")
        return proc_info.listeners(http) >= workers and http_ok(
            server.http_url + "/readyz"
        )

    return _wait(server, ready)
