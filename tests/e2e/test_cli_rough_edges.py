"""The operator's commands as a new operator tries them: purge with 0 days,
erase asks first, keys status for people and scripts, no internal fields
in `customer --json`, no directories made up by rotate-master, the key
error names the file used, and one rebuild rate."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from jericommerce.loyalty.v1 import customer_pb2

from testkit.launch import ROOT, ServiceProcess
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH, webhook_body

pytestmark = pytest.mark.slow


def cli(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
    )


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with ServiceProcess(tmp_path_factory.mktemp("rough")) as s:
        url = s.url + WEBHOOK_PATH
        for i, cid in enumerate(("keep-c", "erase-c")):
            body = webhook_body(
                f"rough-{i}", cid, email=f"{cid}@example.com", firstName="Ann"
            )
            answer = httpx.post(
                url, content=body, headers=headers(body, "Customer created")
            )
            assert answer.status_code == 200
        bad = b'{"id": "no-customer"}'
        assert (
            httpx.post(url, content=bad, headers=headers(bad, "x")).status_code == 400
        )
        yield s


def test_purge_with_zero_days_purges_everything(svc: ServiceProcess) -> None:
    default = cli(svc.env, "quarantine", "purge")
    assert default.returncode == 0 and default.stdout.startswith("purged 0 ")
    zero = cli(svc.env, "quarantine", "purge", "--older-than-days", "0")
    assert zero.returncode == 0 and zero.stdout.startswith("purged 1 "), zero
    negative = cli(svc.env, "quarantine", "purge", "--older-than-days", "-1")
    assert negative.returncode == 2 and "negative" in negative.stderr


def test_erase_asks_unless_yes(svc: ServiceProcess) -> None:
    # No terminal (a script) and no --yes: refused, nothing erased.
    refused = cli(svc.env, "erase", "erase-c")
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert cli(svc.env, "customer", "erase-c").returncode == 0
    erased = cli(svc.env, "erase", "erase-c", "--yes")
    assert erased.returncode == 0 and json.loads(erased.stdout)["erased"] is True
    assert cli(svc.env, "customer", "erase-c").returncode == 1


def test_keys_status_for_people_and_scripts(svc: ServiceProcess) -> None:
    # A no-op erasure (nobody by that id) is a request, not an erased customer.
    assert cli(svc.env, "erase", "nobody-at-all", "--yes").returncode == 0
    assert cli(svc.env, "erase", "erase-c", "--yes").returncode == 0  # again
    human = cli(svc.env, "keys", "status")
    assert human.returncode == 0 and not human.stdout.lstrip().startswith("{")
    assert re.search(r"^master key\s+[0-9a-f]{16}$", human.stdout, re.M), human.stdout
    as_json = cli(svc.env, "keys", "status", "--json")
    assert as_json.returncode == 0
    status = json.loads(as_json.stdout)
    assert status["erased_customers"] == 1, status
    assert status["erasure_requests"] >= 3  # erase-c twice and the no-op
    assert re.search(r"^erased customers\s+1$", human.stdout, re.M)


def test_customer_json_shows_what_the_api_serves(svc: ServiceProcess) -> None:
    shown = cli(svc.env, "customer", "keep-c", "--json")
    assert shown.returncode == 0
    fields = set(json.loads(shown.stdout))
    assert "email_seen_at" not in fields
    served = set(customer_pb2.Customer.DESCRIPTOR.fields_by_name)
    assert fields <= served and {"customer_id", "email", "points_balance"} <= fields


def test_rotate_master_does_not_create_directories(
    svc: ServiceProcess, tmp_path: Path
) -> None:
    target = tmp_path / "no" / "such" / "k.key"
    done = cli(svc.env, "keys", "rotate-master", "--new-key-file", str(target))
    assert done.returncode == 2 and "not a directory" in done.stderr, done
    assert not (tmp_path / "no").exists()


def test_the_wrong_key_error_names_the_file_used(tmp_path: Path) -> None:
    env = {**os.environ, "DATA_DIR": str(tmp_path), "WEBHOOK_SECRET": "s"}
    env.pop("MASTER_KEY_FILE", None)
    env.pop("DATABASE_URL", None)
    assert cli(env, "status").returncode == 0  # creates the store and its key
    default = tmp_path / "master.key"
    other = base64.b64encode(os.urandom(32)).decode() + "\n"
    default.write_text(other)
    wrong = cli(env, "status")
    assert wrong.returncode == 2
    assert "the default key file" in wrong.stderr and str(default) in wrong.stderr
    assert "MASTER_KEY_FILE is unset" in wrong.stderr
    configured = tmp_path / "configured.key"
    configured.write_text(other)
    wrong = cli({**env, "MASTER_KEY_FILE": str(configured)}, "status")
    assert wrong.returncode == 2 and f"MASTER_KEY_FILE ({configured})" in wrong.stderr


def test_rebuild_shows_one_rate(svc: ServiceProcess) -> None:
    done = cli(svc.env, "rebuild")
    assert done.returncode == 0, done.stderr
    summary = re.search(r"at ([\d,]+) events/s", done.stdout)
    rates = re.findall(r"events, ([\d,]+)/s", done.stderr)
    assert summary and rates, (done.stdout, done.stderr)
    # The bar's last rate is the summary's: one measure, the rebuild's.
    assert rates[-1] == summary.group(1)
