"""The gRPC API end to end: signed webhooks in over HTTP, reads out over gRPC."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc
from jericommerce.loyalty.v1 import event_pb2
from jericommerce.loyalty.v1 import event_service_pb2 as epb
from jericommerce.loyalty.v1 import event_service_pb2_grpc as egrpc
from jericommerce.loyalty.v1 import projection_service_pb2 as ppb
from jericommerce.loyalty.v1 import projection_service_pb2_grpc as pgrpc

from testkit.launch import ServiceProcess
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH, webhook_body

pytestmark = pytest.mark.slow


class Api:
    def __init__(self, svc: ServiceProcess) -> None:
        self.svc = svc
        self.channel = grpc.insecure_channel(svc.grpc_target)
        self.customers = cgrpc.CustomerServiceStub(self.channel)
        self.events = egrpc.EventServiceStub(self.channel)
        self.projections = pgrpc.ProjectionServiceStub(self.channel)
        self.n = 0

    def post(self, kind: str, customer: str, **kw: Any) -> int:
        self.n += 1
        body = webhook_body(f"ev-{self.n}", customer, **kw)
        r = httpx.post(
            self.svc.url + WEBHOOK_PATH,
            content=body,
            headers=headers(body, kind),
            timeout=10,
        )
        assert r.status_code == 200, r.text
        return int(r.json()["position"])


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with ServiceProcess(tmp_path_factory.mktemp("grpc")) as svc:
        a = Api(svc)
        yield a
        a.channel.close()


def code_of(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    err = info.value
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    reason = ""
    if status is not None:
        for detail in status.details:
            ei = error_details_pb2.ErrorInfo()
            if detail.Unpack(ei):
                reason = ei.reason
                assert ei.domain
    return err.code(), reason  # type: ignore[attr-defined]


def test_read_your_writes_after_every_post(api: Api) -> None:
    for i in range(1, 21):
        pos = api.post("Balance changed", "ryw", amount=i)
        c = api.customers.GetCustomer(
            cpb.GetCustomerRequest(customer_id="ryw", min_position=pos), timeout=5
        )
        assert c.points_balance == sum(range(1, i + 1))
        assert c.position >= pos


def test_customer_fields_over_grpc(api: Api) -> None:
    api.post("Customer created", "full", email="Full@Example.com", firstName="Ana")
    api.post("Tier changed", "full", previous="Silver", current="Gold")
    api.post("Coupon assigned", "full", code="X1", header="10% off")
    api.post("Coupon pass installed", "full", code="X1")
    api.post("Reward refunded", "full", claimId="k1")
    pos = api.post("Reward redeemed", "full", rewardId="r1", claimId="k1", code="C")
    c = api.customers.GetCustomer(
        cpb.GetCustomerRequest(customer_id="full", min_position=pos), timeout=5
    )
    assert (c.first_name, c.email, c.tier.current) == (
        "Ana",
        "Full@Example.com",
        "Gold",
    )
    assert [(x.code, x.pass_installed) for x in c.coupons] == [("X1", True)]
    assert c.coupon_passes_installed == 1
    assert [(r.claim_id, r.refunded) for r in c.redeemed_rewards] == [("k1", True)]
    found = api.customers.LookupCustomer(
        cpb.LookupCustomerRequest(email="full@EXAMPLE.com"), timeout=5
    )
    assert found.customer_id == "full"


def test_paging_visits_every_customer_exactly_once(api: Api) -> None:
    pos = 0
    for i in range(23):
        tier = "Gold" if i % 3 == 0 else "Bronze"
        pos = api.post("Tier changed", f"page-{i:02d}", current=tier)
    seen: list[str] = []
    token = ""
    while True:
        page = api.customers.ListCustomers(
            cpb.ListCustomersRequest(page_size=4, page_token=token, min_position=pos),
            timeout=5,
        )
        assert len(page.customers) <= 4
        seen += [c.customer_id for c in page.customers]
        token = page.next_page_token
        if not token:
            break
    paged = [s for s in seen if s.startswith("page-")]
    assert paged == [f"page-{i:02d}" for i in range(23)]
    assert len(seen) == len(set(seen))
    golds = api.customers.ListCustomers(
        cpb.ListCustomersRequest(page_size=1000, tier="Gold"), timeout=5
    )
    assert [
        c.customer_id for c in golds.customers if c.customer_id.startswith("page")
    ] == [f"page-{i:02d}" for i in range(0, 23, 3)]
    first = api.customers.ListCustomers(
        cpb.ListCustomersRequest(page_size=2, tier="Gold"), timeout=5
    )
    code, reason = code_of(
        lambda: api.customers.ListCustomers(
            cpb.ListCustomersRequest(
                page_size=2, tier="Bronze", page_token=first.next_page_token
            ),
            timeout=5,
        )
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT and reason == "INVALID_ARGUMENT"


def test_batch_get_is_ordered_and_all_or_nothing(api: Api) -> None:
    api.post("Customer scanned", "b1")
    pos = api.post("Customer scanned", "b2")
    got = api.customers.BatchGetCustomers(
        cpb.BatchGetCustomersRequest(customer_ids=["b2", "b1", "b2"], min_position=pos),
        timeout=5,
    )
    assert [c.customer_id for c in got.customers] == ["b2", "b1", "b2"]
    code, _ = code_of(
        lambda: api.customers.BatchGetCustomers(
            cpb.BatchGetCustomersRequest(customer_ids=["b1", "missing"]), timeout=5
        )
    )
    assert code is grpc.StatusCode.NOT_FOUND


def test_history_and_ledger_pages(api: Api) -> None:
    pos = 0
    for i in range(7):
        pos = api.post(
            "Balance changed",
            "hist",
            created_at=f"2026-03-0{8 - i % 3}T12:00:00Z",
            amount=i,
        )
    events, token = [], ""
    while True:
        page = api.customers.ListCustomerEvents(
            cpb.ListCustomerEventsRequest(
                customer_id="hist", page_size=3, page_token=token, min_position=pos
            ),
            timeout=5,
        )
        events += list(page.events)
        token = page.next_page_token
        if not token:
            break
    assert len(events) == 7
    assert [e.position for e in events] == sorted(e.position for e in events)
    changes, token = [], ""
    while True:
        page = api.customers.ListBalanceChanges(
            cpb.ListBalanceChangesRequest(
                customer_id="hist", page_size=2, page_token=token
            ),
            timeout=5,
        )
        changes += list(page.balance_changes)
        token = page.next_page_token
        if not token:
            break
    keys = [(c.created_at.ToDatetime(), c.event_id) for c in changes]
    assert len(changes) == 7 and keys == sorted(keys)


@pytest.mark.parametrize(
    "call",
    [
        lambda a: a.customers.GetCustomer(cpb.GetCustomerRequest(), timeout=5),
        lambda a: a.customers.GetCustomer(
            cpb.GetCustomerRequest(customer_id="x", min_position=-1), timeout=5
        ),
        lambda a: a.customers.LookupCustomer(cpb.LookupCustomerRequest(), timeout=5),
        lambda a: a.customers.BatchGetCustomers(
            cpb.BatchGetCustomersRequest(), timeout=5
        ),
        lambda a: a.customers.ListCustomers(
            cpb.ListCustomersRequest(page_size=-1), timeout=5
        ),
        lambda a: a.customers.ListCustomers(
            cpb.ListCustomersRequest(page_token="garbage!"), timeout=5
        ),
        lambda a: a.customers.ListCustomerEvents(
            cpb.ListCustomerEventsRequest(), timeout=5
        ),
        lambda a: a.customers.ListBalanceChanges(
            cpb.ListBalanceChangesRequest(customer_id=" "), timeout=5
        ),
        lambda a: list(
            a.events.StreamEvents(epb.StreamEventsRequest(after_position=-5), timeout=5)
        ),
        lambda a: list(
            a.events.StreamEvents(
                epb.StreamEventsRequest(event_types=[event_pb2.EVENT_TYPE_UNSPECIFIED]),
                timeout=5,
            )
        ),
    ],
)
def test_bad_requests_are_invalid_argument(api: Api, call: Any) -> None:
    code, reason = code_of(lambda: call(api))
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert reason == "INVALID_ARGUMENT"


def test_unknown_customer_is_not_found_with_error_info(api: Api) -> None:
    code, reason = code_of(
        lambda: api.customers.GetCustomer(
            cpb.GetCustomerRequest(customer_id="nobody"), timeout=5
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "NOT_FOUND")


def test_min_position_beyond_head_is_deadline_exceeded(api: Api) -> None:
    started = time.monotonic()
    code, _ = code_of(
        lambda: api.customers.GetCustomer(
            cpb.GetCustomerRequest(customer_id="x", min_position=10**9), timeout=0.5
        )
    )
    assert code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 3


def test_replay_rebuilds_a_projection_then_follows_and_resumes(api: Api) -> None:
    for i in range(5):
        api.post("Customer tapped", "replay", n=i)
    head = api.events.GetHeadPosition(epb.GetHeadPositionRequest(), timeout=5).position
    # Replay from zero: a client-side projection (taps per customer).
    taps: dict[str, int] = {}
    last = 0
    for item in api.events.StreamEvents(epb.StreamEventsRequest(), timeout=10):
        assert item.HasField("event")
        assert item.event.position > last
        last = item.event.position
        if item.event.type == event_pb2.EVENT_TYPE_CUSTOMER_TAPPED:
            taps[item.event.customer_id] = taps.get(item.event.customer_id, 0) + 1
    assert last == head and taps["replay"] == 5
    # Follow: the caught-up marker, then live events as they are stored.
    stream = api.events.StreamEvents(
        epb.StreamEventsRequest(after_position=head, follow=True), timeout=20
    )
    first = next(stream)
    assert first.WhichOneof("item") == "caught_up"
    assert first.caught_up.head_position == head
    posted: list[int] = []
    poster = threading.Thread(
        target=lambda: posted.extend(
            api.post("Customer tapped", "replay", n=10 + i) for i in range(3)
        )
    )
    poster.start()
    live = [next(stream).event for _ in range(3)]
    poster.join()
    assert [e.position for e in live] == posted
    stream.cancel()
    # Disconnected; resume from the last position seen, filtered by type.
    more = api.post("Customer scanned", "replay")
    api.post("Customer tapped", "other")
    resumed = list(
        api.events.StreamEvents(
            epb.StreamEventsRequest(
                after_position=live[-1].position,
                event_types=[event_pb2.EVENT_TYPE_CUSTOMER_SCANNED],
                customer_id="replay",
            ),
            timeout=5,
        )
    )
    assert [r.event.position for r in resumed if r.HasField("event")] == [more]
    # A filtered stream ends with the position it scanned to (the other
    # customer's tap came after the scan).
    assert resumed[-1].WhichOneof("item") == "checkpoint"
    assert resumed[-1].checkpoint.position > more
    assert resumed[0].event.type_name == "Customer scanned"
    assert resumed[0].event.raw_json.startswith("{")


def test_health_and_reflection(api: Api) -> None:
    health = health_pb2_grpc.HealthStub(api.channel)
    for service in ("", "jericommerce.loyalty.v1.CustomerService"):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(api.channel)
    answers = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    names = {s.name for a in answers for s in a.list_services_response.service}
    assert {
        "jericommerce.loyalty.v1.CustomerService",
        "jericommerce.loyalty.v1.EventService",
        "jericommerce.loyalty.v1.ProjectionService",
        "grpc.health.v1.Health",
    } <= names


def test_online_rebuild_keeps_serving_and_matches(api: Api) -> None:
    pos = api.post("Balance changed", "rebuild-me", amount=7)
    before = api.customers.ListCustomers(
        cpb.ListCustomersRequest(page_size=1000, min_position=pos), timeout=5
    )
    started = api.projections.RebuildProjections(
        ppb.RebuildProjectionsRequest(), timeout=5
    )
    assert started.started and started.target_position >= pos
    # Reads go on while it runs.
    api.customers.GetCustomer(
        cpb.GetCustomerRequest(customer_id="rebuild-me"), timeout=5
    )
    deadline = time.monotonic() + 30
    while True:
        status = api.projections.GetProjectionStatus(
            ppb.GetProjectionStatusRequest(), timeout=5
        )
        if not status.rebuilding:
            break
        assert time.monotonic() < deadline, "rebuild did not finish"
        time.sleep(0.05)
    # The switch happens once the rebuild reached its target, so the live
    # models are at least there; lag is the plain difference (no clamping
    # hides an applied position beyond the head).
    assert status.applied_position >= started.target_position >= pos
    assert status.lag == status.head_position - status.applied_position
    after = api.customers.ListCustomers(
        cpb.ListCustomersRequest(page_size=1000, min_position=pos), timeout=5
    )
    assert after == before
