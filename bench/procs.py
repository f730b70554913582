"""Servers under test as child processes, pinned to the server core (or, in
the PostgreSQL mode, to no core at all)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from bench.data import SECRET
from bench.tools import pinned

ROOT = Path(__file__).resolve().parent.parent


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
        out = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
        return out

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def descendants(self) -> list[int]:
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            try:
                kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            found += map(int, kids)
            todo += map(int, kids)
        return found

    def tree_cpu_seconds(self) -> float:
        """CPU of the process and its live descendants (ingress --workers)."""
        total = 0.0
        for pid in [self.pid, *self.descendants()]:
            with contextlib.suppress(OSError):  # exited meanwhile
                total += cpu_seconds(pid)
        return total

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
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            pinned([sys.executable, *argv], core),
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=log,
            start_new_session=group,
        )
    return proc, log_path


def _wait(server: Server, ready: Callable[[], bool], timeout: float = 60.0) -> Server:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"{server.name} exited early:\n{server.log_tail()}")
        if ready():
            return server
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{server.name} did not become ready:\n{server.log_tail()}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def _grpc_ok(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=1)
            return True
        except grpc.FutureTimeoutError:
            return False


def start_service(data_dir: Path, core: int, log_dir: Path, name: str) -> Server:
    """`python -m service run` (what `make run` runs) on SQLite in data_dir."""
    http, rpc = free_port(), free_port()
    env = {
        "WEBHOOK_SECRET": SECRET,
        "DATA_DIR": str(data_dir),
        "HTTP_PORT": str(http),
        "GRPC_PORT": str(rpc),
    }
    proc, log = _spawn(name, ["-m", "service", "run"], core, log_dir, env)
    server = Server(name, proc, log, http, rpc, data_dir, env)

    def ready() -> bool:
        return _http_ok(server.http_url + "/readyz") and _grpc_ok(server.grpc_target)

    return _wait(server, ready)


def start_ingress_only(data_dir: Path, core: int, log_dir: Path, name: str) -> Server:
    """`python -m service ingress` on SQLite in data_dir: the webhook app and
    the group commit, with no projection worker and no gRPC API (a step of
    the P1 ladder)."""
    http = free_port()
    env = {
        "WEBHOOK_SECRET": SECRET,
        "DATA_DIR": str(data_dir),
        "HTTP_PORT": str(http),
        "GRPC_PORT": str(free_port()),
    }
    proc, log = _spawn(name, ["-m", "service", "ingress"], core, log_dir, env)
    server = Server(name, proc, log, http, 0, data_dir, env)
    return _wait(server, lambda: _http_ok(server.http_url + "/readyz"))


def start_webhook_handler(core: int, log_dir: Path) -> Server:
    """The service's webhook app answering without storing (a P1 ladder step)."""
    port = free_port()
    argv = ["-m", "bench.baselines.webhook_handler", str(port), SECRET]
    proc, log = _spawn("webhook_handler", argv, core, log_dir)
    server = Server("webhook_handler", proc, log, http_port=port)
    return _wait(server, lambda: _http_ok(server.http_url + "/readyz"))


def start_bare_sanic(core: int | None, log_dir: Path, loop: str = "uvloop") -> Server:
    port = free_port()
    argv = ["-m", "bench.baselines.bare_sanic", str(port), "--loop", loop]
    proc, log = _spawn(f"bare_sanic_{loop}", argv, core, log_dir)
    server = Server(f"bare_sanic_{loop}", proc, log, http_port=port)
    return _wait(server, lambda: _http_ok(server.http_url + "/healthz"))


def start_bare_grpc(core: int, log_dir: Path, samples: Path) -> Server:
    port = free_port()
    argv = ["-m", "bench.baselines.bare_grpc", str(port), str(samples)]
    proc, log = _spawn("bare_grpc", argv, core, log_dir)
    server = Server("bare_grpc", proc, log, grpc_port=port)
    return _wait(server, lambda: _grpc_ok(server.grpc_target))


def _listeners(port: int) -> int:
    """Sockets listening on `port` (one per SO_REUSEPORT process)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(
        1
        for r in rows
        if r.split()[1].endswith(f":{port:04X}") and r.split()[3] == "0A"
    )


def start_pg_role(
    role: str, database_url: str, log_dir: Path, name: str, workers: int = 1
) -> Server:
    """`python -m service ROLE` on PostgreSQL, on no particular core. The
    ingress serves HTTP (with `--workers N`, N processes on one port); the
    worker serves only /metrics; the api serves gRPC."""
    from bench.pg import master_key_file

    http, rpc = free_port(), free_port()
    env = {
        "WEBHOOK_SECRET": SECRET,
        "DATABASE_URL": database_url,
        "MASTER_KEY_FILE": str(master_key_file()),
        "HTTP_PORT": str(http),
        "GRPC_PORT": str(rpc),
        "METRICS_PORT": str(http),
    }
    argv = ["-m", "service", role]
    if workers > 1:
        argv += ["--workers", str(workers)]
    proc, log = _spawn(name, argv, None, log_dir, env, group=workers > 1)
    server = Server(name, proc, log, http, rpc, env=env, group=workers > 1)

    def ready() -> bool:
        if role == "api":
            return _grpc_ok(server.grpc_target)
        if role == "worker":
            return _http_ok(server.http_url + "/metrics")
        return _listeners(http) >= workers and _http_ok(server.http_url + "/readyz")

    return _wait(server, ready)
