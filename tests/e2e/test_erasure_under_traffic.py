"""The reproduction, from outside: two senders keep posting signed,
future-dated `Balance changed` webhooks for one customer while a
data-protection officer calls EraseCustomer. Once the projections have caught
up, GetCustomer must count every event accepted after the erasure's record,
and its balance must be their sum, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import httpx
import pytest
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc
from jericommerce.loyalty.v1 import privacy_service_pb2 as ppb
from jericommerce.loyalty.v1 import privacy_service_pb2_grpc as pgrpc
from jericommerce.loyalty.v1 import projection_service_pb2 as prpb
from jericommerce.loyalty.v1 import projection_service_pb2_grpc as prgrpc

from testkit.launch import ServiceProcess
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH

pytestmark = pytest.mark.slow
SENDS = 150  # per sender


def sender(url: str, tag: str, accepted: list[int], errors: list[str]) -> None:
    try:
        send(url, tag, accepted, errors)
    except Exception as e:  # reported by the test, not lost in a thread
        errors.append(repr(e))


def send(url: str, tag: str, accepted: list[int], errors: list[str]) -> None:
    start = datetime.now(UTC) + timedelta(days=1)
    with httpx.Client(base_url=url, timeout=30) as client:
        for i in range(SENDS):
            body = json.dumps(
                {
                    "id": f"{tag}-{i}",
                    "customerId": "hot",
                    "email": "hot@example.com",
                    "createdAt": (start + timedelta(seconds=i)).isoformat(),
                    "properties": {"amount": 3, "reference": f"{tag}-{i}"},
                }
            ).encode()
            answer = client.post(
                WEBHOOK_PATH, content=body, headers=headers(body, "Balance changed")
            )
            if answer.status_code != 200:
                errors.append(f"{answer.status_code} {answer.text}")
                continue
            accepted.append(answer.json()["position"])


def erase_during_traffic(urls: list[str], grpc_target: str) -> None:
    """Senders x and y post to `urls` (one each, or both to one); the
    erasure and the reads go to the API at `grpc_target`."""
    accepted: list[int] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=sender, args=(url, tag, accepted, errors))
        for tag, url in zip(("x", "y"), urls * 2, strict=False)
    ]
    for t in threads:
        t.start()
    with grpc.insecure_channel(grpc_target) as ch:
        deadline = time.monotonic() + 60
        while len(accepted) < SENDS // 2:  # well into the traffic
            assert not errors and time.monotonic() < deadline, errors[:3]
            time.sleep(0.01)
        erased = pgrpc.PrivacyServiceStub(ch).EraseCustomer(
            ppb.EraseCustomerRequest(customer_id="hot"), timeout=60
        )
        for t in threads:
            t.join(120)
        assert errors == []
        assert erased.erased and erased.position
        status = prgrpc.ProjectionServiceStub(ch)
        deadline = time.monotonic() + 30
        while status.GetProjectionStatus(prpb.GetProjectionStatusRequest()).lag:
            assert time.monotonic() < deadline, "the projections did not catch up"
            time.sleep(0.05)
        after = [p for p in accepted if p > erased.position]
        assert after, "every event arrived before the erasure: nothing tested"
        assert len(after) < len(accepted), "the erasure erased nothing"
        customer = cgrpc.CustomerServiceStub(ch).GetCustomer(
            cpb.GetCustomerRequest(customer_id="hot"), timeout=10
        )
        assert customer.event_count == len(after)
        assert customer.points_balance == 3 * len(after)


def test_sqlite_erasure_during_traffic_keeps_every_later_event(tmp_path: Path) -> None:
    with ServiceProcess(tmp_path / "data") as svc:
        erase_during_traffic([svc.url], svc.grpc_target)


@pytest.mark.postgres
def test_postgres_erasure_during_traffic_keeps_every_later_event(
    pg_url: str, tmp_path: Path
) -> None:
    with ServiceProcess(tmp_path / "data", DATABASE_URL=pg_url) as svc:
        erase_during_traffic([svc.url], svc.grpc_target)


@pytest.mark.postgres
def test_postgres_split_roles_erasure_during_traffic_keeps_every_later_event(
    pg_url: str, tmp_path: Path
) -> None:
    # Two ingress processes, the worker and the API each in their own: the
    # erasure call runs where the worker is not.
    started: list[ServiceProcess] = []
    try:
        for name, role in (("in1", "ingress"), ("in2", "ingress"), ("w", "worker"),
                           ("api", "api")):  # fmt: skip
            started.append(
                ServiceProcess(
                    tmp_path / name, command=(role,), DATABASE_URL=pg_url
                ).start()
            )
        erase_during_traffic([started[0].url, started[1].url], started[3].grpc_target)
    finally:
        for p in started:
            p.stop()
