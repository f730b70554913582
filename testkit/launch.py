"""Launching the service (or any server) as a child process and waiting
until it answers."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import grpc

from testkit.signing import SECRET

ROOT = Path(__file__).resolve().parent.parent


_handed_out: set[int] = set()


def _worker_share() -> tuple[int, int]:
    """(index, count) of this pytest-xdist worker; (0, 1) outside one."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ...
    if not worker.startswith("gw"):
        return 0, 1
    return int(worker[2:]), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


def free_port() -> int:
    """A port free now and not handed out before by this process: the
    kernel may offer a just-closed port again, and a service given the same
    port for HTTP and gRPC (or two services one port) answers the wrong
    protocol on it. Parallel test workers each take only ports of their
    own share (worker i of n: (port >> 1) % n == i), so no two are given
    one; halved first, because Linux hands bind() ports of one parity."""
    index, count = _worker_share()
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if (port >> 1) % count == index and port not in _handed_out:
            _handed_out.add(port)
            return port


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """The URL answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return bool(r.status == 200)
    except (OSError, http.client.HTTPException):
        # HTTPException: something that is not our HTTP server answered.
        return False


def grpc_ok(target: str, timeout: float = 1.0) -> bool:
    """A plaintext gRPC server accepts connections on `target`."""
    with grpc.insecure_channel(target) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout)
            return True
        except grpc.FutureTimeoutError:
            return False


def spawn(
    argv: Sequence[str],
    log_path: Path,
    env: Mapping[str, str] | None = None,
    *,
    new_session: bool = False,
) -> subprocess.Popen[bytes]:
    """`argv` from the repository root, output appended to `log_path`, with
    `env` over this process's environment."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:  # the child keeps its own copy
        return subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )


class NotReady(RuntimeError):
    """A child exited, or did not answer in time; str() ends with its log."""


def wait_until(
    ready: Callable[[], bool],
    proc: subprocess.Popen[bytes],
    timeout: float,
    log: Callable[[], str] = str,
    interval: float = 0.05,
) -> None:
    """Poll `ready` until it is true; NotReady if `proc` exits first or the
    time runs out (the process is left running then: the caller stops it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise NotReady(f"exited early with {proc.returncode}:\n{log()}")
        if ready():
            return
        time.sleep(interval)
    raise NotReady(f"did not become ready in {timeout:.0f} s:\n{log()}")


class ServiceProcess:
    """`python -m service COMMAND` in a subprocess, on free ports, in `data_dir`."""

    def __init__(
        self, data_dir: Path, *, command: tuple[str, ...] = ("run",), **env: str
    ) -> None:
        self.data_dir = data_dir
        self.command = command
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.env = {
            **os.environ,
            "WEBHOOK_SECRET": SECRET,
            "DATA_DIR": str(data_dir),
            "HTTP_PORT": str(self.http_port),
            "GRPC_PORT": str(self.grpc_port),
            **env,
        }
        if "DATABASE_URL" in env and "MASTER_KEY_FILE" not in env:
            from testkit.keys import master_key_file

            self.env["MASTER_KEY_FILE"] = str(master_key_file())
        self.proc: subprocess.Popen[bytes] | None = None
        # One log per process: several may share a data dir (split roles).
        self.log_path = data_dir / f"service-{'-'.join(command)}-{self.grpc_port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, timeout: float = 20.0) -> ServiceProcess:
        argv = [sys.executable, "-m", "service", *self.command]
        self.proc = spawn(argv, self.log_path, self.env)
        try:
            wait_until(self._ready, self.proc, timeout, self.log)
        except NotReady as e:
            self.stop()
            raise RuntimeError(f"service {e}") from None
        except BaseException:
            self.stop()  # never leave a child behind a failed start
            raise
        return self

    def _ready(self) -> bool:
        if self.command[0] in ("run", "ingress"):
            return http_ok(self.url + "/readyz")
        # api and worker: they say so in their log once everything started.
        return '"event": "listening"' in self.log()

    def cli(self, *args: str, check: bool = True) -> str:
        """Run `python -m service ARGS` against this service; its stdout."""
        out = subprocess.run(
            [sys.executable, "-m", "service", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            timeout=60,
            check=check,
        )
        return out.stdout.decode()

    def log(self) -> str:
        return (
            self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
