"""A full disk under DATA_DIR: SQLite answers every webhook 503 "database or
disk is full" while still answering reads, so `/readyz` must say 503 (an
orchestrator then stops routing webhooks to it) and 200 again once there is
room, without a webhook having to succeed first.

The data directory is a small tmpfs filled with a file; mounting needs
root (CAP_SYS_ADMIN), as in this project's CI container."""

from __future__ import annotations

import contextlib
import errno
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testkit.launch import ServiceProcess
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "16m") -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> None:
    chunk = b"\0" * 65536
    with path.open("wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC


def post(client: httpx.Client, i: int) -> int:
    body = json.dumps(
        {
            "id": f"e{i}",
            "customerId": f"c{i % 7}",
            "createdAt": "2026-03-08T12:00:00Z",
            # Big enough that each needs new pages in the log.
            "properties": {"amount": 1, "note": f"{i:08d}" * 4000},
        }
    ).encode()
    answer = client.post(
        WEBHOOK_PATH, content=body, headers=headers(body, "Balance changed")
    )
    return answer.status_code


def readiness(client: httpx.Client) -> tuple[int, dict[str, bool]]:
    answer = client.get("/readyz")
    return answer.status_code, answer.json()["checks"]


def wait_for(client: httpx.Client, code: int) -> dict[str, bool]:
    deadline = time.monotonic() + 15
    while True:
        status, checks = readiness(client)
        if status == code:
            return checks
        assert time.monotonic() < deadline, (status, checks)
        time.sleep(0.2)


def test_readyz_follows_the_space_the_store_has(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "data") as data:
        svc = ServiceProcess(data)
        svc.log_path = tmp_path / "service.log"  # the log needs room too
        with svc, httpx.Client(base_url=svc.url, timeout=30) as client:
            assert post(client, 0) == 200
            assert readiness(client) == (200, wait_for(client, 200))
            filler = data / "filler"
            fill(filler)
            codes = [post(client, i) for i in range(1, 200)]
            assert 503 in codes, codes
            checks = wait_for(client, 503)
            assert checks["store"] is True and checks["store_space"] is False
            filler.unlink()
            checks = wait_for(client, 200)  # no webhook needed to get there
            assert checks["store_space"] is True
            assert post(client, 1000) == 200
