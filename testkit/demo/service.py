"""Finding the service the demo talks to, or starting one that outlives it."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx

from testkit.demo.sender import DemoError
from testkit.launch import NotReady, http_ok, spawn, wait_until

START_TIMEOUT = 30.0


def answering(url: str) -> bool:
    try:
        httpx.get(url + "/healthz", timeout=1)
    except httpx.HTTPError:
        return False
    return True


def start_service(base: str, data_dir: Path, secret_env: dict[str, str]) -> int:
    log_path, pid_path = data_dir / "demo-service.log", data_dir / "demo-service.pid"
    env = {**secret_env, "DATA_DIR": str(data_dir.resolve())}
    argv = [sys.executable, "-m", "service", "run"]
    # In its own session: it outlives the demo, and Ctrl-C in it.
    proc = spawn(argv, log_path, env, new_session=True)
    pid_path.write_text(f"{proc.pid}\n")
    print(f"Starting the service (pid {proc.pid}, log {log_path}) ...", flush=True)

    def tail() -> str:
        lines = log_path.read_text(errors="replace").splitlines()[-15:]
        return f"the end of {log_path}:\n" + "\n".join(lines)

    try:
        wait_until(lambda: http_ok(base + "/readyz"), proc, START_TIMEOUT, tail, 0.1)
    except NotReady as e:
        if proc.poll() is not None:
            pid_path.unlink(missing_ok=True)
        raise DemoError(f"the service {e}") from None
    return proc.pid


def wait_ready(base: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(base + "/readyz", timeout=2)
            if answer.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise DemoError(f"{base}/readyz did not answer 200 within {START_TIMEOUT:.0f} s")


def local(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
