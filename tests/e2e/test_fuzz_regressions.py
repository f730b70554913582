"""Bugs found by fuzzing the ingress, fixed; each pinned here (on a fresh
service, or on the shared fuzz harness)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc

from testkit.fuzz.harness import Harness
from testkit.fuzz.oracle import SIG, TYPE
from testkit.launch import ServiceProcess
from testkit.signing import sign
from testkit.webhooks import WEBHOOK_PATH

pytestmark = pytest.mark.slow


# --- bugs found by fuzzing, fixed; pinned here (each on a fresh service) ------


def _post(svc: ServiceProcess, body: bytes, event_type: str | bytes) -> httpx.Response:
    return httpx.post(
        svc.url + WEBHOOK_PATH,
        content=body,
        headers={SIG: sign(body), TYPE: event_type},
        timeout=10,
    )


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[ServiceProcess]:
    with ServiceProcess(tmp_path) as svc:
        yield svc


@pytest.mark.parametrize(
    "created_at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]
)
def test_created_at_out_of_range_is_400_and_quarantined(
    harness: Harness, created_at: str
) -> None:
    body = json.dumps(
        {"id": f"range-{created_at}", "customerId": "c", "createdAt": created_at}
    ).encode()
    r = _post(harness.svc, body, "Customer scanned")
    assert r.status_code == 400, r.text
    assert body in [q.body for q in harness.quarantine.list(10**6)]


def test_lone_surrogate_in_id_is_not_503(harness: Harness) -> None:
    body = b'{"id":"sur\\ud800","customerId":"c","createdAt":"2026-03-08T12:00:00Z"}'
    r = _post(harness.svc, body, "Customer scanned")
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert body in [q.body for q in harness.quarantine.list(10**6)]


POISON = {
    "customerId escape": (
        b'{"id":"p1","customerId":"c\\udc00","createdAt":"2026-03-08T12:00:00Z"}',
        "Customer created",
    ),
    "email escape": (
        b'{"id":"p2","customerId":"c","email":"x\\ud800@y.z",'
        b'"createdAt":"2026-03-08T12:00:00Z"}',
        "Customer created",
    ),
    "non-UTF-8 byte in the event type": (
        b'{"id":"p4","customerId":"c","createdAt":"2026-03-08T12:00:00Z"}',
        b"Balance \xff changed",
    ),
}


@pytest.mark.parametrize("case", list(POISON))
def test_lone_surrogates_do_not_halt_the_projections(
    fresh: ServiceProcess, case: str
) -> None:
    body, event_type = POISON[case]
    r = _post(fresh, body, event_type)
    assert r.status_code in (200, 400), r.text
    ok = b'{"id":"after","customerId":"next","createdAt":"2026-03-08T12:00:00Z"}'
    r = _post(fresh, ok, "Customer scanned")
    assert r.status_code == 200
    with grpc.insecure_channel(fresh.grpc_target) as channel:
        customer = cgrpc.CustomerServiceStub(channel).GetCustomer(
            cpb.GetCustomerRequest(
                customer_id="next", min_position=r.json()["position"]
            ),
            timeout=3,
        )
    assert customer.event_count == 1


def test_repeated_id_is_400_and_quarantined_not_stored(harness: Harness) -> None:
    """Stored as dupB while its raw JSON began with dupA: two readings."""
    body = (
        b'{"id":"dupA","customerId":"c","createdAt":"2026-03-08T12:00:00Z","id":"dupB"}'
    )
    r = _post(harness.svc, body, "Customer scanned")
    assert r.status_code == 400, r.text
    assert r.json() == {"error": 'body repeats the key "id" in one JSON object'}
    assert body in [q.body for q in harness.quarantine.list(10**6)]
    assert body not in [e.raw for e in harness.store.read(0, 10**6)]


def test_long_id_is_400_and_quarantined_not_stored(harness: Harness) -> None:
    body = json.dumps(
        {"id": "x" * 10_000, "customerId": "c", "createdAt": "2026-03-08"}
    ).encode()
    r = _post(harness.svc, body, "Customer scanned")
    assert r.status_code == 400, r.text
    assert r.json() == {"error": "id is longer than 256 characters"}
    assert body in [q.body for q in harness.quarantine.list(10**6)]
    assert body not in [e.raw for e in harness.store.read(0, 10**6)]
