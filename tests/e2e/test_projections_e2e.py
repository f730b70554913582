"""Projections end to end: shuffled, repeated deliveries over HTTP; a worker
killed mid-stream; the operator's CLI."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
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

from testkit.launch import ROOT, ServiceProcess
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH, webhook_body

pytestmark = pytest.mark.slow


def history(customer: str) -> list[tuple[str, bytes]]:
    """One customer's story, in createdAt order, with known outcomes."""

    def ev(n: int, kind: str, minute: int, **kw: object) -> tuple[str, bytes]:
        at = f"2026-03-08T12:{minute:02d}:00Z"
        return kind, webhook_body(f"{customer}-{n}", customer, at, **kw)  # type: ignore[arg-type]

    return [
        ev(1, "Customer created", 0, email="old@x.com", firstName="Eva"),
        ev(2, "Balance changed", 1, amount=100),
        ev(3, "Tier changed", 2, previous="Bronze", current="Silver"),
        ev(4, "Reward refunded", 3, claimId="k1"),  # before its redemption
        ev(5, "Reward redeemed", 4, rewardId="r1", claimId="k1", code="FREE"),
        ev(6, "Balance changed", 5, amount=-30),
        ev(7, "Coupon assigned", 6, code="C1", header="10%"),
        ev(8, "Coupon pass installed", 7, code="C1"),
        ev(9, "Coupon pass uninstalled", 8),  # no code
        ev(10, "Wallet pass installed", 9),
        ev(11, "Wallet pass uninstalled", 10),
        ev(12, "Tier changed", 11, previous="Silver", current="Gold"),
        ev(13, "Balance changed", 12, amount=5, previousBalance=70),
        ev(14, "Customer scanned", 13, email="new@x.com"),
        ev(15, "Points expired", 14, amount=-1),  # unknown: stored, no effect
    ]


def deliver(url: str, items: list[tuple[str, bytes]], concurrency: int = 16) -> int:
    """Every delivery answered 2xx; returns the highest position."""

    async def run() -> int:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            sem = asyncio.Semaphore(concurrency)

            async def one(kind: str, body: bytes) -> int:
                async with sem:
                    r = await client.post(
                        WEBHOOK_PATH, content=body, headers=headers(body, kind)
                    )
                    assert r.status_code == 200, r.text
                    return int(r.json()["position"])

            return max(await asyncio.gather(*(one(k, b) for k, b in items)))

    return asyncio.run(run())


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with ServiceProcess(tmp_path_factory.mktemp("proj")) as s:
        yield s


def get(svc: ServiceProcess, cid: str, pos: int = 0) -> cpb.Customer:  # type: ignore[name-defined]
    with grpc.insecure_channel(svc.grpc_target) as ch:
        return cgrpc.CustomerServiceStub(ch).GetCustomer(
            cpb.GetCustomerRequest(customer_id=cid, min_position=pos), timeout=10
        )


def test_any_order_any_repeats_gives_the_contracts_model(svc: ServiceProcess) -> None:
    rnd = random.Random(3)
    for cid, order in (("ordered", "as-is"), ("reversed", "rev"), ("shuffled", "mix")):
        items = history(cid)
        if order == "rev":
            items = items[::-1]
        elif order == "mix":
            items = items * 3
            rnd.shuffle(items)
        pos = deliver(svc.url, items)
        c = get(svc, cid, pos)
        assert c.email == "new@x.com"  # newest event carrying one
        assert c.first_name == "Eva"
        assert c.points_balance == 75  # previousBalance 70 + 5 on the newest
        assert (c.tier.current, c.tier.previous) == ("Gold", "Silver")
        assert [(r.claim_id, r.refunded) for r in c.redeemed_rewards] == [("k1", True)]
        assert [(x.code, x.pass_installed) for x in c.coupons] == [("C1", True)]
        assert c.coupon_passes_installed == 0  # one install, one uninstall
        assert c.wallet_pass.status == customer_pb2.WALLET_PASS_STATUS_UNINSTALLED
        assert c.engagement.scans == 1
        assert c.event_count == 14  # the unknown event touches nothing


def test_cli_customer_and_dead_letters(svc: ServiceProcess) -> None:
    bad = webhook_body("poison-1", "ordered", amount="lots")
    pos = deliver(svc.url, [("Balance changed", bad)])
    get(svc, "ordered", pos)  # applied (as a dead letter)

    cli = svc.cli
    assert "points        75" in cli("customer", "ordered")
    model = json.loads(cli("customer", "NEW@x.com", "--json"))
    assert model["customer_id"] in {"ordered", "reversed", "shuffled"}
    assert model["points_balance"] == 75
    letters = [
        json.loads(x) for x in cli("dead-letters", "list", "--json").splitlines()
    ]
    assert [(d["event_id"], d["customer_id"]) for d in letters] == [
        ("poison-1", "ordered")
    ]
    assert get(svc, "ordered").points_balance == 75  # the rest still applies
    position = letters[0]["position"]
    assert f"{position}: dismissed" in cli("dead-letters", "dismiss", str(position))
    assert "0 open dead letter(s)" in cli("dead-letters", "list")


def snapshot(target: str) -> list[cpb.Customer]:  # type: ignore[name-defined]
    with grpc.insecure_channel(target) as ch:
        page = cgrpc.CustomerServiceStub(ch).ListCustomers(
            cpb.ListCustomersRequest(page_size=1000), timeout=10
        )
    return list(page.customers)


def wait_caught_up(target: str, timeout: float = 30) -> ppb.GetProjectionStatusResponse:  # type: ignore[name-defined]
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as ch:
        stub = pgrpc.ProjectionServiceStub(ch)
        while True:
            s = stub.GetProjectionStatus(ppb.GetProjectionStatusRequest(), timeout=5)
            if s.lag == 0 and not s.rebuilding and s.applied_position > 0:
                return s
            assert time.monotonic() < deadline, f"not caught up: {s}"
            time.sleep(0.05)


def test_worker_killed_mid_stream_resumes_exactly_once(tmp_path: Path) -> None:
    svc = ServiceProcess(tmp_path / "kill").start()
    rnd = random.Random(11)
    items = [
        (
            "Balance changed",
            webhook_body(f"k{i}", f"c{rnd.randrange(40)}", amount=rnd.randrange(1, 9)),
        )
        for i in range(1500)
    ]
    deliver(svc.url, items, concurrency=32)
    svc.kill()  # the worker is most likely mid-batch now
    svc.start()
    try:
        status = wait_caught_up(svc.grpc_target)
        live = snapshot(svc.grpc_target)
        assert sum(c.event_count for c in live) == 1500  # none lost, none twice
        with grpc.insecure_channel(svc.grpc_target) as ch:
            pgrpc.ProjectionServiceStub(ch).RebuildProjections(
                ppb.RebuildProjectionsRequest(), timeout=5
            )
        wait_caught_up(svc.grpc_target)
        assert snapshot(svc.grpc_target) == live  # equal to a fresh rebuild
        assert status.dead_letters == 0
    finally:
        svc.stop()


def test_cli_rebuild_with_progress_while_stopped(tmp_path: Path) -> None:
    svc = ServiceProcess(tmp_path / "cli-rebuild").start()
    deliver(svc.url, history("r1") + history("r2"))
    wait_caught_up(svc.grpc_target)
    before = snapshot(svc.grpc_target)
    svc.stop()
    out = subprocess.run(
        [sys.executable, "-m", "service", "rebuild"],
        env=svc.env,
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert b"events" in out.stderr and b"/s" in out.stderr  # the progress bar
    assert b"rebuilt generation 2" in out.stdout
    svc.start()
    try:
        assert snapshot(svc.grpc_target) == before
    finally:
        svc.stop()
