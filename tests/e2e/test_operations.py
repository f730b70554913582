"""What operators see: /metrics after known traffic, and the CLI against a
running service."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc
from prometheus_client.parser import text_string_to_metric_families

from testkit.launch import ROOT, ServiceProcess, free_port
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH, webhook_body

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with ServiceProcess(tmp_path_factory.mktemp("ops"), MAX_BODY_BYTES="4096") as s:
        yield s


def samples(
    svc: ServiceProcess,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(svc.url + "/metrics", timeout=5).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_after_known_traffic(svc: ServiceProcess) -> None:
    def post(body: bytes, hdrs: dict[str, str]) -> int:
        return httpx.post(
            svc.url + WEBHOOK_PATH, content=body, headers=hdrs
        ).status_code

    bodies = [webhook_body(f"m{i}", "metrics-c", amount=i) for i in range(3)]
    assert [post(b, headers(b, "Balance changed")) for b in bodies] == [200] * 3
    assert post(bodies[0], headers(bodies[0], "Balance changed")) == 200  # duplicate
    assert post(bodies[1], {"x-jericommerce-event-type": "Balance changed"}) == 401
    assert post(b"nope", headers(b"nope", "Balance changed")) == 400
    big = b"x" * 5000
    assert post(big, headers(big, "Balance changed")) == 413
    with grpc.insecure_channel(svc.grpc_target) as ch:
        stub = cgrpc.CustomerServiceStub(ch)
        stub.GetCustomer(
            cpb.GetCustomerRequest(customer_id="metrics-c", min_position=3)
        )
        with pytest.raises(grpc.RpcError):
            stub.GetCustomer(cpb.GetCustomerRequest(customer_id="nobody"))
    time.sleep(1.5)  # gauges are refreshed every second
    m = samples(svc)
    web = "loyalty_webhooks_total"
    assert m[(web, (("event_type", "BALANCE_CHANGED"), ("outcome", "accepted")))] == 3
    assert m[(web, (("event_type", "BALANCE_CHANGED"), ("outcome", "duplicate")))] == 1
    assert m[(web, (("event_type", "-"), ("outcome", "bad_signature")))] == 1
    assert m[(web, (("event_type", "-"), ("outcome", "invalid")))] == 1
    assert m[(web, (("event_type", "-"), ("outcome", "too_large")))] == 1
    assert m[("loyalty_append_seconds_count", ())] == 4
    assert m[("loyalty_append_batch_size_count", ())] >= 1
    # Three accepted events, applied in one batch or more.
    assert m[("loyalty_projection_batch_size_sum", ())] == 3
    assert m[("loyalty_event_store_head_position", ())] == 3
    assert m[("loyalty_projection_applied_position", ())] == 3
    assert m[("loyalty_projection_lag_events", ())] == 0
    assert m[("loyalty_quarantine_open", ())] == 1
    assert m[("loyalty_projection_dead_letters", ())] == 0
    get = "/jericommerce.loyalty.v1.CustomerService/GetCustomer"
    grpc_total = "loyalty_grpc_requests_total"
    assert m[(grpc_total, (("code", "OK"), ("method", get)))] == 1
    assert m[(grpc_total, (("code", "NOT_FOUND"), ("method", get)))] == 1
    assert m[("loyalty_grpc_seconds_count", (("method", get),))] == 2


def test_cli_status_events_send(svc: ServiceProcess, tmp_path: Path) -> None:
    body = tmp_path / "event.json"
    body.write_bytes(webhook_body("cli-sent", "cli-c", amount=42))
    sent = svc.cli("send", str(body), "--type", "Balance changed")
    assert sent.startswith("200") and '"accepted"' in sent
    again = svc.cli("send", str(body), "--type", "Balance changed")
    assert '"duplicate"' in again
    position = json.loads(sent.split(" ", 1)[1])["position"]
    deadline = time.monotonic() + 10
    while True:
        status = json.loads(svc.cli("status", "--json"))
        if status["applied_position"] >= position or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status["head_position"] == position == status["applied_position"]
    assert status["lag"] == 0 and status["backend"] == "sqlite"
    assert status["customers"] >= 1
    raw = svc.cli("events", "--json", "--customer", "cli-c").splitlines()
    assert [json.loads(line)["id"] for line in raw] == ["cli-sent"]
    table = svc.cli("events", "--type", "balance_changed", "--tail", "1")
    assert "cli-sent" in table and "Balance changed" in table
    assert "points        42" in svc.cli("customer", "cli-c")
    for command in ("status", "events", "send", "customer", "quarantine", "rebuild"):
        assert "usage:" in svc.cli(command, "--help")


def test_send_reports_a_rejection(svc: ServiceProcess, tmp_path: Path) -> None:
    body = tmp_path / "bad.json"
    body.write_bytes(b'{"id": "x"}')
    out = subprocess.run(
        [sys.executable, "-m", "service", "send", str(body), "--type", "Tier changed"],
        env=svc.env,
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert out.returncode == 1 and b"400" in out.stderr


def test_api_only_process_exposes_metrics_on_metrics_port(svc: ServiceProcess) -> None:
    port = free_port()
    api = ServiceProcess(svc.data_dir, command=("api",), METRICS_PORT=str(port))
    api.start()
    try:
        with grpc.insecure_channel(api.grpc_target) as ch, pytest.raises(grpc.RpcError):
            cgrpc.CustomerServiceStub(ch).GetCustomer(
                cpb.GetCustomerRequest(customer_id="nobody-here"), timeout=5
            )
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        (sample,) = [
            s
            for s in families["loyalty_grpc_requests"].samples
            if s.name.endswith("_total") and s.labels["code"] == "NOT_FOUND"
        ]
        assert sample.value == 1
    finally:
        api.stop()
