"""What an operator reads: a refused or quarantined webhook gets a line with
its reason, HTTP requests and gRPC calls an access line, the process a
start-up and a shutdown summary; and no line carries personal data, a
body or the secret."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc

from testkit.launch import ServiceProcess
from testkit.rawhttp import raw_http
from testkit.signing import SECRET, headers
from testkit.webhooks import WEBHOOK_PATH, webhook_body

pytestmark = pytest.mark.slow

EMAIL, FIRST, LAST, PHONE = (
    "ada.private@example.com",
    "Adaline",
    "Lovewell",
    "+44207946",
)
PRIVATE = (EMAIL, FIRST, LAST, PHONE, SECRET, "Secret Coupon Body")


def lines(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if line.strip()]


def events(log: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [line for line in log if line.get("event") == name]


def send_traffic(svc: ServiceProcess) -> None:
    url = svc.url + WEBHOOK_PATH
    created = webhook_body(
        "log-1",
        "log-c",
        email=EMAIL,
        firstName=FIRST,
        lastName=LAST,
        phoneNumber=PHONE,
    )
    ok = httpx.post(url, content=created, headers=headers(created, "Customer created"))
    assert ok.status_code == 200
    # 401 twice (no signature, a wrong one), 400 (quarantined), 413.
    unsigned = {"x-jericommerce-event-type": "Customer created"}
    assert httpx.post(url, content=created, headers=unsigned).status_code == 401
    wrong = headers(created, "Customer created", secret="not-the-secret")
    assert httpx.post(url, content=created, headers=wrong).status_code == 401
    bad = json.dumps(
        {"id": "log-2", "email": EMAIL, "body": "Secret Coupon Body"}
    ).encode()
    refused = httpx.post(url, content=bad, headers=headers(bad, "Coupon assigned"))
    assert refused.status_code == 400
    big = b"{" + EMAIL.encode() * 400 + b"}"
    assert httpx.post(url, content=big, headers=headers(big, "x")).status_code == 413
    assert httpx.get(f"{svc.url}/{EMAIL}").status_code == 404
    # Unreadable HTTP: refused before it is a webhook at all.
    garbled = raw_http(
        svc.http_port,
        f"POST {WEBHOOK_PATH}?e={EMAIL} HTTP/1.1\r\nHost: x\r\n"
        "Content-Length: lots\r\n\r\n".encode(),
    )
    assert garbled.startswith(b"HTTP/1.1 400")
    with grpc.insecure_channel(svc.grpc_target) as channel:
        stub = cgrpc.CustomerServiceStub(channel)
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetCustomer(cpb.GetCustomerRequest(customer_id="nobody"), timeout=5)
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as late:
            stub.GetCustomer(
                cpb.GetCustomerRequest(customer_id="log-c", min_position=10**9),
                timeout=0.5,
                metadata=(("x-request-id", "req-42"),),
            )
        assert late.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        stub.LookupCustomer(cpb.LookupCustomerRequest(email=EMAIL), timeout=5)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    svc = ServiceProcess(tmp_path_factory.mktemp("logs"), MAX_BODY_BYTES="4096")
    with svc:
        send_traffic(svc)
    text = svc.log()
    for secret in PRIVATE:
        assert secret not in text, f"the log holds {secret!r}"
    return lines(text)  # every line is JSON


def test_every_refused_webhook_has_a_line_with_its_reason(
    log: list[dict[str, Any]],
) -> None:
    refused = events(log, "webhook refused")
    assert sorted((r["status"], r["reason"]) for r in refused) == [
        (400, "customerId must be a non-empty string"),
        (401, "unauthorized"),
        (401, "unauthorized"),
        (413, "request too large"),
    ]
    assert sorted(r.get("why", "") for r in refused if r["status"] == 401) == [
        "no signature",
        "signature does not match",
    ]
    (quarantined,) = [r for r in refused if r["status"] == 400]
    assert quarantined["outcome"] == "invalid" and quarantined["quarantine_id"] >= 1
    assert quarantined["level"] == "warning" and quarantined["request_id"]


def test_unreadable_http_has_a_line_too(log: list[dict[str, Any]]) -> None:
    (line,) = events(log, "request refused")
    assert line["status"] == 400 and line["level"] == "warning"
    assert line["reason"] == "invalid Content-Length header" and line["request_id"]


def test_http_access_lines(log: list[dict[str, Any]]) -> None:
    access = events(log, "http request")
    by_status = {line["status"]: line for line in access}
    assert set(by_status) >= {200, 400, 401, 404}
    accepted = by_status[200]
    assert accepted["route"] == WEBHOOK_PATH and accepted["method"] == "POST"
    assert accepted["outcome"] == "accepted" and accepted["position"] >= 1
    assert accepted["duration_ms"] >= 0 and "trace_id" in accepted
    assert by_status[404]["route"] is None  # the target is not repeated
    # Probes (the launcher polls /readyz) are not access-logged.
    assert all(line["route"] != "/readyz" for line in access)


def test_grpc_access_lines(log: list[dict[str, Any]]) -> None:
    calls = events(log, "grpc call")
    codes = {(c["method"].rsplit("/", 1)[1], c["code"]) for c in calls}
    assert ("GetCustomer", "NOT_FOUND") in codes
    assert ("GetCustomer", "DEADLINE_EXCEEDED") in codes
    assert ("LookupCustomer", "OK") in codes
    (late,) = [c for c in calls if c["code"] == "DEADLINE_EXCEEDED"]
    assert late["request_id"] == "req-42" and late["duration_ms"] >= 400
    assert "trace_id" in late


def test_start_up_and_shutdown_summaries(log: list[dict[str, Any]]) -> None:
    (listening,) = events(log, "listening")
    assert listening["roles"] == ["api", "ingress", "worker"]
    assert listening["backend"] == "sqlite" and listening["access_log_limit"] == 100
    (stopping,) = events(log, "stopping")
    assert stopping["webhooks"] == {
        "accepted": 1,
        "bad_signature": 2,
        "invalid": 1,
        "too_large": 1,
    }
    assert stopping["grpc_calls"]["NOT_FOUND"] == 1 and stopping["quarantined"] == 1
    (stopped,) = events(log, "stopped")
    assert stopped["uptime_s"] > 0 and stopped["applied_position"] >= 1
    assert events(log, "holding the worker lease; applying")


def test_access_log_off_keeps_the_refusals(tmp_path: Path) -> None:
    with ServiceProcess(tmp_path, ACCESS_LOG_LIMIT="0") as svc:
        body = webhook_body("off-1", "off-c")
        url = svc.url + WEBHOOK_PATH
        assert httpx.post(url, content=body, headers=headers(body, "x")).status_code
        assert httpx.post(url, content=body).status_code == 401
    log = lines(svc.log())
    assert not events(log, "http request") and not events(log, "grpc call")
    assert [r["status"] for r in events(log, "webhook refused")] == [401]
