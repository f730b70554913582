"""Test helpers: signing webhooks and running the real service as a process."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from service.masterkey import MasterKey

SECRET = "test-secret"
ROOT = Path(__file__).resolve().parent.parent


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(
    event_id: str,
    customer_id: str = "c1",
    created_at: str = "2026-03-08T12:00:00Z",
    email: str | None = None,
    **properties: Any,
) -> bytes:
    body: dict[str, Any] = {
        "id": event_id,
        "customerId": customer_id,
        "createdAt": created_at,
        "properties": properties,
    }
    if email is not None:
        body["email"] = email
    return json.dumps(body).encode()


def headers(body: bytes, event_type: str, secret: str = SECRET) -> dict[str, str]:
    return {
        "x-jericommerce-hmac-sha256": sign(body, secret),
        "x-jericommerce-event-type": event_type,
        "content-type": "application/json",
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def master_key_file() -> Path:
    """One master key file for the test run, for PostgreSQL-backed services
    (which need MASTER_KEY_FILE; the embedded default creates its own)."""
    global _MASTER_KEY_FILE
    if _MASTER_KEY_FILE is None:
        from service.masterkey import write_new_master_key

        path = Path(tempfile.mkdtemp(prefix="loyalty-test-key-")) / "master.key"
        write_new_master_key(path)
        _MASTER_KEY_FILE = path
    return _MASTER_KEY_FILE


def master_key() -> MasterKey:
    from service.masterkey import read_master_key

    return read_master_key(master_key_file())


_MASTER_KEY_FILE: Path | None = None


class ServiceProcess:
    """`python -m service run` in a subprocess, on free ports, in `data_dir`."""

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
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "service", *self.command],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited early:\n{self.log()}")
            if self._ready():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"service did not become ready:\n{self.log()}")

    def _ready(self) -> bool:
        if self.command[0] in ("run", "ingress"):
            try:
                return httpx.get(self.url + "/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False
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


def raw_http(port: int, request: bytes, timeout: float = 10.0) -> bytes:
    """Send bytes as they are (headers httpx would refuse) and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                head, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
                length = [
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ]
                if length and len(rest) >= length[0]:
                    break
        return b"".join(chunks)
