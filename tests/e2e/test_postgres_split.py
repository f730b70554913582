"""PostgreSQL in production: the roles as separate processes, and outages."""

from __future__ import annotations

import asyncio
import random
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc

from projections.customer.model import fold, view
from service.backends.postgres.store import open_postgres
from testkit import procs as proc_info
from testkit.customer_message import customer_to_proto
from testkit.keys import master_key
from testkit.launch import ServiceProcess
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH, webhook_body

pytestmark = pytest.mark.slow


def burst(n: int, prefix: str, seed: int) -> list[tuple[str, bytes]]:
    rnd = random.Random(seed)
    kinds = ["Balance changed", "Tier changed", "Customer scanned", "Coupon assigned"]
    out = []
    for i in range(n):
        kind = rnd.choice(kinds)
        props: dict[str, object] = {
            "Balance changed": {"amount": rnd.randrange(1, 50)},
            "Tier changed": {"current": rnd.choice(["Gold", "Silver"])},
            "Customer scanned": {},
            "Coupon assigned": {"code": rnd.choice("XYZ")},
        }[kind]
        body = webhook_body(
            f"{prefix}-{i}",
            f"cust-{rnd.randrange(25)}",
            f"2026-03-08T12:{rnd.randrange(60):02d}:00Z",
            **props,  # type: ignore[arg-type]
        )
        out.append((kind, body))
    return out


async def post_all(
    urls: list[str], items: list[tuple[str, bytes]], retry: bool = False
) -> dict[str, list[dict[str, object]]]:
    """Each item to every url concurrently; with `retry`, like JeriCommerce,
    a non-2xx is sent again after a pause until it is answered 2xx."""
    answers: dict[str, list[dict[str, object]]] = {}
    async with httpx.AsyncClient(timeout=15) as client:
        sem = asyncio.Semaphore(32)

        async def one(url: str, kind: str, body: bytes) -> None:
            for _ in range(200):
                async with sem:
                    try:
                        r = await client.post(
                            url + WEBHOOK_PATH,
                            content=body,
                            headers=headers(body, kind),
                        )
                    except httpx.HTTPError:
                        r = None
                if r is not None and r.status_code == 200:
                    answers.setdefault(body.decode(), []).append(r.json())
                    return
                answers.setdefault("non-2xx", []).append(
                    {"status": r.status_code if r is not None else "error"}
                )
                if not retry:
                    return
                await asyncio.sleep(0.1)

        await asyncio.gather(*(one(u, k, b) for k, b in items for u in urls))
    return answers


def reference(pg_url: str) -> list[cpb.Customer]:  # type: ignore[name-defined]
    events, _, factory = open_postgres(pg_url, master_key())
    try:
        stored = events.read(0, 10**7)
    finally:
        factory.close()
    out = []
    for cid in sorted({e.customer_id for e in stored}):
        result = fold(cid, stored)
        if result.state.event_count:
            out.append(customer_to_proto(view(result.state)))
    return out


def customers(target: str, min_position: int = 0) -> list[cpb.Customer]:  # type: ignore[name-defined]
    with grpc.insecure_channel(target) as ch:
        page = cgrpc.CustomerServiceStub(ch).ListCustomers(
            cpb.ListCustomersRequest(page_size=1000, min_position=min_position),
            timeout=20,
        )
    return list(page.customers)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for p in started:
        p.stop()


def test_split_roles_two_ingress_two_api_worker_failover(
    pg_url: str, tmp_path: Path, procs: list[ServiceProcess]
) -> None:
    env = {"DATABASE_URL": pg_url}

    def spawn(name: str, *command: str) -> ServiceProcess:
        p = ServiceProcess(tmp_path / name, command=command, **env).start()
        procs.append(p)
        return p

    ingress = [spawn("in1", "ingress"), spawn("in2", "ingress")]
    workers = [spawn("w1", "worker"), spawn("w2", "worker")]
    apis = [spawn("api1", "api"), spawn("api2", "api")]
    urls = [p.url for p in ingress]

    # The same events to both ingress processes at once: one copy each.
    first = burst(300, "a", 1)
    answers = asyncio.run(post_all(urls, first))
    assert "non-2xx" not in answers
    for item in answers.values():
        assert sorted(a["status"] for a in item) == ["accepted", "duplicate"]
        assert len({a["position"] for a in item}) == 1

    # Kill the worker holding the lease mid-stream; the standby takes over.
    leader = next(w for w in workers if "holding the worker lease" in w.log())
    standby = next(w for w in workers if w is not leader)
    second = burst(600, "b", 2)

    async def second_burst_and_kill() -> dict[str, list[dict[str, object]]]:
        task = asyncio.create_task(post_all(urls, second))
        await asyncio.sleep(0.3)
        leader.kill()
        return await task

    answers = asyncio.run(second_burst_and_kill())
    assert "non-2xx" not in answers
    head = max(int(a["position"]) for item in answers.values() for a in item)
    deadline = time.monotonic() + 30
    while "holding the worker lease" not in standby.log():
        assert time.monotonic() < deadline, "the standby never took over"
        time.sleep(0.1)
    expected = reference(pg_url)
    assert sum(c.event_count for c in expected) == 900
    for api in apis:
        assert customers(api.grpc_target, head) == expected


def test_outage_answers_503_unavailable_then_recovers(
    tmp_path: Path, procs: list[ServiceProcess], pg_admin_url: str
) -> None:
    admin = psycopg.connect(pg_admin_url, autocommit=True, connect_timeout=3)
    db = f"fault_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{db}"')
    url = pg_admin_url.rsplit("/", 1)[0] + f"/{db}"
    try:
        svc = ServiceProcess(tmp_path / "fault", DATABASE_URL=url).start()
        procs.append(svc)
        items = burst(300, "f", 3)

        def cut(allow: bool) -> None:
            admin.execute(
                f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS {str(allow).lower()}'
            )
            if not allow:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s",
                    (db,),
                )

        health = health_pb2_grpc.HealthStub(grpc.insecure_channel(svc.grpc_target))

        async def burst_through_outage() -> dict[str, list[dict[str, object]]]:
            task = asyncio.create_task(post_all([svc.url], items, retry=True))
            await asyncio.sleep(0.3)
            cut(False)
            await asyncio.sleep(2.5)
            check = await asyncio.to_thread(
                health.Check, health_pb2.HealthCheckRequest(), timeout=5
            )
            assert check.status == health_pb2.HealthCheckResponse.NOT_SERVING
            code = None
            try:
                await asyncio.to_thread(customers, svc.grpc_target)
            except grpc.RpcError as e:
                code = e.code()
            assert code is grpc.StatusCode.UNAVAILABLE
            await asyncio.sleep(1)
            cut(True)
            return await task

        answers = asyncio.run(burst_through_outage())
        assert {a["status"] for a in answers.get("non-2xx", [])} <= {503}
        assert answers.get("non-2xx"), "the outage produced no 503 at all"
        accepted = [a for k, v in answers.items() if k != "non-2xx" for a in v]
        assert len(accepted) == 300  # every event answered 2xx in the end
        head = max(int(a["position"]) for a in accepted)
        expected = reference(url)
        assert sum(c.event_count for c in expected) == 300  # stored once each
        assert customers(svc.grpc_target, head) == expected
        check = health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert check.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        for p in procs:
            p.stop()
        procs.clear()
        admin.execute(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true')
        admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.close()


def _metrics_dir(pid: int) -> Path:
    value = proc_info.environ_value(pid, "PROMETHEUS_MULTIPROC_DIR")
    assert value is not None
    return Path(value)


def _supervised_ingress(
    pg_url: str, tmp_path: Path, procs: list[ServiceProcess]
) -> tuple[ServiceProcess, list[int]]:
    svc = ServiceProcess(
        tmp_path, command=("ingress", "--workers", "2"), DATABASE_URL=pg_url
    ).start()
    procs.append(svc)
    assert svc.proc is not None
    deadline = time.monotonic() + 20
    while len(children := proc_info.spawned_children(svc.proc.pid)) < 2:
        assert time.monotonic() < deadline, "the two ingress children never started"
        time.sleep(0.1)
    items = burst(40, "w", 4)
    answers = asyncio.run(post_all([svc.url], items))
    assert "non-2xx" not in answers and len(answers) == 40
    return svc, children


def test_ingress_workers_stop_and_clean_up_with_their_supervisor(
    pg_url: str, tmp_path: Path, procs: list[ServiceProcess]
) -> None:
    svc, children = _supervised_ingress(pg_url, tmp_path, procs)
    metrics = _metrics_dir(children[0])
    assert metrics.is_dir()
    svc.stop()  # SIGTERM
    assert svc.proc is not None and svc.proc.returncode == 0
    assert not any(proc_info.running(pid) for pid in children)
    assert not metrics.exists()


def test_ingress_workers_do_not_outlive_a_killed_supervisor(
    pg_url: str, tmp_path: Path, procs: list[ServiceProcess]
) -> None:
    svc, children = _supervised_ingress(pg_url, tmp_path, procs)
    metrics = _metrics_dir(children[0])
    svc.kill()  # SIGKILL: the supervisor cannot stop them itself
    deadline = time.monotonic() + 15
    while any(proc_info.running(pid) for pid in children):
        assert time.monotonic() < deadline, "orphaned ingress children kept running"
        time.sleep(0.1)
    with pytest.raises(httpx.ConnectError):  # nobody serves the port any more
        httpx.get(svc.url + "/healthz", timeout=2)
    shutil.rmtree(metrics)  # a killed supervisor cannot remove it
