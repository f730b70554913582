"""Reliability under SIGKILL and under duplicate storms, against the real
service process.

The kill test is `scripts/killtest.py` in a short form; run the script by hand
for the long one (see docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from jericommerce.loyalty.v1 import customer_pb2
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc
from jericommerce.loyalty.v1 import projection_service_pb2 as ppb
from jericommerce.loyalty.v1 import projection_service_pb2_grpc as pgrpc

from projections.events import EventType
from service.backends.sqlite.store import open_sqlite
from testkit.killtest import run
from testkit.launch import ServiceProcess
from testkit.signing import headers
from testkit.traffic import Webhook, plan_events
from testkit.webhooks import WEBHOOK_PATH, webhook_body

pytestmark = pytest.mark.slow
CONNECTIONS = 64


def test_sigkill_under_load_loses_nothing_and_applies_once(tmp_path: Path) -> None:
    """3 SIGKILLs at random moments while 32 connections deliver ~600 events
    (some twice) and retry every non-2xx: the script's checks all hold."""
    report = run(kills=3, events=600, connections=32, seed=7, data_dir=tmp_path)
    text = report.text()
    assert report.kills == 3, text
    assert report.kills_under_load >= 1 and report.in_flight_at_kills > 0, text
    assert report.connection_errors > 0, text  # the kills were felt
    assert report.acknowledged_lost == 0, text
    assert report.stored_twice == 0, text
    assert report.applied_twice == 0 and report.applied_missing == 0, text
    assert report.acknowledged_ids == report.events == 600, text
    assert report.stored_events == 600, text
    assert report.event_count_sum == report.expected_event_count_sum > 0, text
    assert report.customers_unlike_pure_fold == 0, text
    assert report.rebuild_generation[1] > report.rebuild_generation[0], text
    assert report.customers_unlike_rebuild == 0, text
    assert report.ok, text


# --- the duplicate storm -----------------------------------------------------


@pytest.fixture(scope="module")
def storm_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with ServiceProcess(tmp_path_factory.mktemp("storm")) as svc:
        yield svc


def storm_events() -> list[Webhook]:
    """A few hundred events of every kind, plus known poison and unknown-type
    events for customers that exist."""
    rnd = random.Random(2026)
    events = plan_events(rnd, 360, poison_rate=0.0, unknown_rate=0.0)
    someone = events[0].customer_id
    for i in range(3):
        body = webhook_body(f"storm-poison-{i}", someone, amount="lots")
        events.append(
            Webhook(
                f"storm-poison-{i}",
                "Balance changed",
                EventType.BALANCE_CHANGED,
                someone,
                body,
                poison=True,
            )
        )
        body = webhook_body(f"storm-unknown-{i}", someone, amount=-5)
        events.append(
            Webhook(f"storm-unknown-{i}", "Points expired", None, someone, body)
        )
    return events


def test_duplicate_storm_stores_and_applies_each_event_once(
    storm_service: ServiceProcess,
) -> None:
    svc = storm_service
    rnd = random.Random(99)
    events = storm_events()
    assert len({e.id for e in events}) == len(events) >= 360
    assert {e.type for e in events} == {*EventType, None}  # all 18 and unknown
    deliveries = [e for e in events for _ in range(rnd.randint(1, 10))]
    rnd.shuffle(deliveries)
    answers: dict[str, list[tuple[str, int]]] = defaultdict(list)

    async def connection(queue: asyncio.Queue[Webhook]) -> None:
        # One client per connection: a pool of 64 in one client costs the
        # client more CPU than the service spends.
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(
            base_url=svc.url, limits=limits, timeout=30
        ) as client:
            while not queue.empty():
                e = queue.get_nowait()
                r = await client.post(
                    WEBHOOK_PATH, content=e.body, headers=headers(e.body, e.type_name)
                )
                assert r.status_code == 200, r.text
                answers[e.id].append((r.json()["status"], r.json()["position"]))

    async def storm() -> None:
        queue: asyncio.Queue[Webhook] = asyncio.Queue()
        for e in deliveries:
            queue.put_nowait(e)
        await asyncio.gather(*(connection(queue) for _ in range(CONNECTIONS)))

    asyncio.run(storm())
    copies = Counter(e.id for e in deliveries)
    assert max(copies.values()) > 5 and len(deliveries) > 3 * len(events)

    # Exactly one `accepted` per id; every copy answered with its position.
    position: dict[str, int] = {}
    for e in events:
        got = answers[e.id]
        assert len(got) == copies[e.id]
        assert [s for s, _ in got].count("accepted") == 1, (e.id, got)
        assert {s for s, _ in got} <= {"accepted", "duplicate"}
        assert len({p for _, p in got}) == 1, (e.id, got)
        position[e.id] = got[0][1]
    assert len(set(position.values())) == len(events)

    # Exactly one stored per id, at the position answered.
    store, _, factory = open_sqlite(svc.data_dir)
    try:
        stored = store.read(0, 1_000_000)
    finally:
        factory.close()
    assert Counter(x.id for x in stored) == Counter(e.id for e in events)
    assert {x.id: x.position for x in stored} == position
    by_id = {e.id: e for e in events}
    assert all(x.raw == by_id[x.id].body for x in stored)

    # Exactly one applied per id.
    with grpc.insecure_channel(svc.grpc_target) as channel:
        status = caught_up(channel)
        customers = list_customers(channel)
        applied = [e for e in events if e.type is not None and not e.poison]
        assert status.dead_letters == sum(e.poison for e in events) == 3
        assert sum(c.event_count for c in customers.values()) == len(applied)
        per_customer = Counter(e.customer_id for e in applied)
        assert {cid: c.event_count for cid, c in customers.items()} == per_customer

        balance_changes = Counter(
            e.customer_id for e in applied if e.type is EventType.BALANCE_CHANGED
        )
        stub = cgrpc.CustomerServiceStub(channel)
        for cid, n in balance_changes.most_common(5):
            ledger = []
            token = ""
            while True:
                page = stub.ListBalanceChanges(
                    cpb.ListBalanceChangesRequest(
                        customer_id=cid, page_size=7, page_token=token
                    ),
                    timeout=10,
                )
                ledger.extend(page.balance_changes)
                if not (token := page.next_page_token):
                    break
            assert len(ledger) == n > 1
            expected = {
                e.id
                for e in applied
                if e.customer_id == cid and e.type is EventType.BALANCE_CHANGED
            }
            assert {b.event_id for b in ledger} == expected


def caught_up(
    channel: grpc.Channel, timeout: float = 30
) -> ppb.GetProjectionStatusResponse:
    stub = pgrpc.ProjectionServiceStub(channel)
    deadline = time.monotonic() + timeout
    while True:
        s = stub.GetProjectionStatus(ppb.GetProjectionStatusRequest(), timeout=5)
        if s.lag == 0 and not s.rebuilding and s.applied_position > 0:
            return s
        assert time.monotonic() < deadline, f"not caught up: {s}"
        time.sleep(0.05)


def list_customers(channel: grpc.Channel) -> dict[str, customer_pb2.Customer]:
    stub = cgrpc.CustomerServiceStub(channel)
    found = {}
    token = ""
    while True:
        page = stub.ListCustomers(
            cpb.ListCustomersRequest(page_size=100, page_token=token), timeout=10
        )
        found.update({c.customer_id: c for c in page.customers})
        if not (token := page.next_page_token):
            return found
