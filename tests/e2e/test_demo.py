"""`make demo` in quick mode: it starts the service itself, sends every event
type (retries, late deliveries, invalid bodies, one poison event included) and
prints what the service made of it; a second run reuses the running service."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from projections.events import EventType
from testkit import procs
from testkit.launch import ROOT, free_port

pytestmark = pytest.mark.slow
SECRET = "demo-test-secret"


def _stop(pid_file: Path) -> None:
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    try:
        cmdline = procs.cmdline(pid)
    except OSError:
        return
    if b"service" not in cmdline:  # the pid was reused: not ours to stop
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while procs.running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if procs.running(pid):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    environ = {
        **os.environ,
        "DATA_DIR": str(tmp_path / "data"),
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(free_port()),
        "GRPC_HOST": "127.0.0.1",
        "GRPC_PORT": str(free_port()),
        "WEBHOOK_SECRET": SECRET,
    }
    environ.pop("DATABASE_URL", None)
    try:
        yield environ
    finally:
        _stop(tmp_path / "data" / "demo-service.pid")


def demo(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "scripts/demo.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def section(out: str, start: str, end: str) -> str:
    begin = out.index(start) + len(start)
    return out[begin : out.index(end, begin)]


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "service", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_demo_quick_mode(env: dict[str, str]) -> None:
    started = time.monotonic()
    out = demo(env, "--quick")
    data = Path(env["DATA_DIR"])
    assert "WEBHOOK_SECRET is not set" not in out  # ours was used
    assert "Starting the service" in out
    pid = int((data / "demo-service.pid").read_text())
    assert procs.running(pid), "the demo must leave the service running"
    assert (data / "demo-service.log").stat().st_size > 0
    assert f"kill $(cat {data / 'demo-service.pid'})" in out

    summary = section(out, "\nSummary\n", "\nSent, by event type")
    figures = {
        label.strip(): int(value)  # "  {label:<14}{value:>7}  {note}"
        for label, value in re.findall(r"^  (.{14}) *(\d+)  ", summary, re.M)
    }
    assert figures["deliveries"] == (
        figures["accepted"] + figures["duplicates"] + figures["rejected 400"]
    )
    assert figures["duplicates"] > 0 and figures["out of order"] > 0
    assert figures["rejected 400"] == 5
    assert figures["event types"] == 18
    assert figures["unknown type"] == 1
    assert figures["customers"] == 30
    assert figures["poison"] == 1 and figures["dead letters"] == 1
    # A fresh store: everything stored came from the demo, and is applied.
    assert figures["head position"] >= figures["accepted"]
    assert figures["applied"] == figures["head position"]
    assert figures["lag"] == 0

    per_type = section(out, "Sent, by event type (first copies):\n", "\nOne customer")
    sent = {name: int(n) for name, n in re.findall(r"([A-Z][a-z ]+?) +(\d+)", per_type)}
    assert set(sent) == {t.value for t in EventType}
    assert all(n > 0 for n in sent.values()), sent

    _, _, rest = out.partition("\nOne customer, ")
    model = json.loads(rest[rest.index("\n{") : rest.index("\n}\n") + 2])
    assert model["email"] in rest.splitlines()[0]
    assert model["event_count"] > 0 and model["position"] > 0
    for part in ("tier", "wallet_pass", "coupons", "gift_cards", "birthday"):
        assert model[part], part
    assert any(r.get("refunded") for r in model["redeemed_rewards"])
    assert model["engagement"]["scans"] > 0

    # What the service itself says, independently of the demo's own figures.
    metrics = httpx.get(f"http://127.0.0.1:{env['HTTP_PORT']}/metrics").text
    web = {
        (s.labels["event_type"], s.labels["outcome"]): s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
        if s.name == "loyalty_webhooks_total"
    }
    for t in EventType:
        assert web.get((t.name, "accepted"), 0) > 0, t
    assert web[("UNKNOWN", "accepted")] == 1
    assert web[("-", "invalid")] == 5
    duplicates = sum(v for (_, outcome), v in web.items() if outcome == "duplicate")
    assert duplicates == figures["duplicates"]
    quarantined = cli(env, "quarantine", "list", "--json").splitlines()
    assert len(quarantined) == 5
    (letter,) = map(json.loads, cli(env, "dead-letters", "list", "--json").splitlines())
    assert letter["type_name"] == "Balance changed"

    # The first next step, pasted as printed, finds the customer.
    step = section(out, "Next steps:\n", "\n").strip()
    assert step.endswith(f"customer {model['email']}")
    shown = subprocess.run(
        ["bash", "-c", step], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert model["customer_id"] in shown.stdout

    # Again: the running service is reused, nothing else is started.
    again = demo(env, "--customers", "3")
    assert "already answering" in again and "Starting the service" not in again
    assert int((data / "demo-service.pid").read_text()) == pid
    assert re.search(r"^  dead letters +2  ", again, re.M)
    assert time.monotonic() - started < 60
