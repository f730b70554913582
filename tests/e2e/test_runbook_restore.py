"""Someone restores last night's backup following the runbook word for word:
the shell blocks of its "Back up and restore" SQLite section are run as
written (with `loyalty` as this checkout's CLI and `/safe/loyalty` a
directory of the test's), around a real service: back up while it runs,
lose the data directory, restore, start, read a customer. Restoring without
the master key is refused, naming the key, and creates no key file."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import pytest
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc

from testkit.launch import ROOT, ServiceProcess
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH

pytestmark = pytest.mark.slow


def runbook_blocks() -> list[str]:
    text = (ROOT / "docs" / "runbook.md").read_text()
    section = text[text.index("## Back up and restore") :]
    section = section[section.index("### SQLite") : section.index("### PostgreSQL")]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def run_block(block: str, cwd: Path, safe: Path) -> None:
    """Each line as an operator would type it, in `cwd`."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATA_DIR", "MASTER_KEY_FILE")
    }
    for line in block.splitlines():
        if not line.strip() or "loyalty run" in line:
            continue  # the service is started by the test
        if line.startswith("sqlite3 ") and shutil.which("sqlite3") is None:
            continue  # the runbook's next block does it without the tool
        line = line.replace("/safe/loyalty", str(safe))
        line = line.replace(".venv/bin/python", sys.executable)
        line = re.sub(r"\bloyalty ", f"{sys.executable} -m service ", line)
        done = subprocess.run(
            ["bash", "-c", line], cwd=cwd, env={**env, "PYTHONPATH": str(ROOT)},
            capture_output=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, f"{line}\n{done.stderr.decode()[-2000:]}"


def send_customer(svc: ServiceProcess) -> int:
    body = json.dumps(
        {
            "id": "ana-created",
            "customerId": "ana",
            "email": "ana@example.com",
            "createdAt": "2026-03-08T12:00:00Z",
            "properties": {"firstName": "Ana", "email": "ana@example.com"},
        }
    ).encode()
    answer = httpx.post(
        svc.url + WEBHOOK_PATH, content=body, headers=headers(body, "Customer created")
    )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["position"])


def read_customer(svc: ServiceProcess) -> cpb.Customer:
    with grpc.insecure_channel(svc.grpc_target) as ch:
        stub = cgrpc.CustomerServiceStub(ch)
        deadline = time.monotonic() + 30
        while True:
            try:
                return stub.GetCustomer(
                    cpb.GetCustomerRequest(customer_id="ana"), timeout=10
                )
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def test_backup_and_restore_as_the_runbook_says(tmp_path: Path) -> None:
    backup, python_backup, restore = runbook_blocks()
    safe = tmp_path / "safe"
    safe.mkdir()
    with ServiceProcess(tmp_path / "var") as svc:
        send_customer(svc)
        assert read_customer(svc).email == "ana@example.com"
        run_block(backup, tmp_path, safe)
        run_block(python_backup, tmp_path, safe)
    assert (safe / "master.key").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "backup" / "master.key").exists()  # kept apart
    shutil.rmtree(tmp_path / "var")  # the disaster

    # Forgetting the key: refused, naming the key, and no file is made.
    forgot = tmp_path / "var-restored"
    forgot.mkdir()
    shutil.copy(tmp_path / "backup" / "events.sqlite", forgot)
    status = subprocess.run(
        [sys.executable, "-m", "service", "status"],
        env=ServiceProcess(forgot).env, cwd=ROOT, capture_output=True, timeout=60,
    )  # fmt: skip
    assert status.returncode != 0
    assert "master.key is missing" in status.stderr.decode()
    assert not (forgot / "master.key").exists()
    shutil.rmtree(forgot)

    run_block(restore, tmp_path, safe)
    with ServiceProcess(tmp_path / "var-restored") as restored:
        customer = read_customer(restored)
    assert customer.email == "ana@example.com" and customer.first_name == "Ana"
