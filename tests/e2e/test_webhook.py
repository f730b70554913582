"""The webhook endpoint over a real port, against the real service process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from projections.events import EventType
from service.backends.sqlite.store import open_sqlite
from testkit.launch import ROOT, ServiceProcess
from testkit.rawhttp import raw_http
from testkit.signing import SECRET, headers, sign
from testkit.webhooks import WEBHOOK_PATH, webhook_body

pytestmark = pytest.mark.slow


def post(svc: ServiceProcess, body: bytes, hdrs: dict[str, str]) -> httpx.Response:
    return httpx.post(svc.url + WEBHOOK_PATH, content=body, headers=hdrs, timeout=10)


def stored(data_dir: Path) -> list:
    store, _, factory = open_sqlite(data_dir)
    try:
        return store.read(0, 1_000_000)
    finally:
        factory.close()


def test_all_eighteen_events_accepted_and_stored_verbatim(
    service: ServiceProcess,
) -> None:
    bodies = {}
    positions = []
    for i, kind in enumerate(EventType):
        # Send each name in a different spelling; all must be recognised.
        name = [kind.value, kind.name, kind.name.lower().replace("_", ".")][i % 3]
        body = webhook_body(f"all-{i}", "cust-all", note=f"n{i}", nested={"k": [i]})
        r = post(service, body, headers(body, name))
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "accepted"
        positions.append(r.json()["position"])
        bodies[f"all-{i}"] = (body, kind)
    assert positions == sorted(positions) and len(set(positions)) == 18
    events = {e.id: e for e in stored(service.data_dir) if e.id.startswith("all-")}
    assert set(events) == set(bodies)
    for event_id, (body, kind) in bodies.items():
        assert events[event_id].raw == body
        assert events[event_id].type is kind


def test_same_event_ten_times_concurrently(service: ServiceProcess) -> None:
    body = webhook_body("dup-1", "cust-dup", amount=5)
    hdrs = headers(body, "Balance changed")

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=service.url, timeout=10) as client:
            return await asyncio.gather(
                *(
                    client.post(WEBHOOK_PATH, content=body, headers=hdrs)
                    for _ in range(10)
                )
            )

    answers = [r.json() for r in asyncio.run(burst())]
    assert sorted(a["status"] for a in answers) == ["accepted"] + ["duplicate"] * 9
    assert len({a["position"] for a in answers}) == 1
    again = post(service, body, hdrs).json()
    assert again == {"status": "duplicate", "position": answers[0]["position"]}
    assert [e.id for e in stored(service.data_dir)].count("dup-1") == 1


def test_unknown_event_name_is_stored(service: ServiceProcess) -> None:
    body = webhook_body("unknown-1", "cust-u")
    r = post(service, body, headers(body, "Points expired"))
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    (event,) = [e for e in stored(service.data_dir) if e.id == "unknown-1"]
    assert event.type is None and event.type_name == "Points expired"


@pytest.mark.parametrize(
    "hdrs",
    [
        {"x-jericommerce-event-type": "Customer created"},
        {
            "x-jericommerce-event-type": "Customer created",
            "x-jericommerce-hmac-sha256": "00" * 32,
        },
        {
            "x-jericommerce-event-type": "Customer created",
            "x-jericommerce-hmac-sha256": sign(b"other body"),
        },
        {
            "x-jericommerce-event-type": "Customer created",
            "x-jericommerce-hmac-sha256": sign(webhook_body("sig-1"), "wrong"),
        },
    ],
)
def test_missing_or_wrong_signature_is_401_and_stores_nothing(
    service: ServiceProcess, hdrs: dict[str, str]
) -> None:
    r = post(service, webhook_body("sig-1"), hdrs)
    assert r.status_code == 401
    assert "signature" not in r.text.lower()  # no detail of why
    assert "sig-1" not in {e.id for e in stored(service.data_dir)}


INVALID = [
    (b"garbage", "Customer created", "JSON"),
    (b'{"customerId":"c","createdAt":"2026-01-01T00:00:00Z"}', "Tier changed", "id"),
    (b'{"id":"q2","createdAt":"2026-01-01T00:00:00Z"}', "Tier changed", "customerId"),
    (b'{"id":"q3","customerId":"c"}', "Tier changed", "createdAt"),
    (b'{"id":"q4","customerId":"c","createdAt":"soon"}', "Tier changed", "createdAt"),
    (b'{"id":"q5","customerId":"c","createdAt":"2026-01-01","a":NaN}', "x", "NaN"),
    (webhook_body("q6"), "", "header"),
]


@pytest.mark.parametrize(("body", "event_type", "reason"), INVALID)
def test_signed_but_invalid_is_400_and_quarantined(
    service: ServiceProcess, body: bytes, event_type: str, reason: str
) -> None:
    hdrs = headers(body, event_type)
    if not event_type:
        del hdrs["x-jericommerce-event-type"]
    r = post(service, body, hdrs)
    assert r.status_code == 400
    assert reason in r.json()["error"]
    listing = subprocess.run(
        [sys.executable, "-m", "service", "quarantine", "list", "--json"],
        env={**service.env},
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    items = [json.loads(line) for line in listing.stdout.splitlines()]
    newest = items[-1]
    assert reason in newest["reason"] and newest["bytes"] == len(body)
    shown = subprocess.run(
        [sys.executable, "-m", "service", "quarantine", "show", str(newest["id"])],
        env={**service.env},
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    assert json.loads(shown.stdout)["body"] == body.decode()


def test_blank_event_type_header_is_400(service: ServiceProcess) -> None:
    body = webhook_body("blank-1")
    request = (
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"x-jericommerce-hmac-sha256: {sign(body)}\r\n"
        f"x-jericommerce-event-type:    \r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body
    answer = raw_http(service.http_port, request)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"header" in answer


def test_body_over_the_limit_is_413(service: ServiceProcess) -> None:
    body = b'{"pad":"' + b"x" * (2 * 1024 * 1024) + b'"}'
    r = post(service, body, headers(body, "Customer created"))
    assert r.status_code == 413


def test_health_and_readiness(service: ServiceProcess) -> None:
    assert httpx.get(service.url + "/healthz").status_code == 200
    assert httpx.get(service.url + "/readyz").status_code == 200
    metrics = httpx.get(service.url + "/metrics").text
    assert "loyalty_webhooks_total" in metrics


def test_kill_9_mid_burst_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """SIGKILL during a burst: every 2xx'd event is stored after a restart;
    the sender's retries then store the rest, each exactly once."""
    svc = ServiceProcess(tmp_path / "crash").start()
    deliveries = [webhook_body(f"burst-{i}", f"c{i % 7}", amount=i) for i in range(600)]
    acked: set[str] = set()

    async def send_all() -> None:
        async with httpx.AsyncClient(base_url=svc.url, timeout=5) as client:
            sem = asyncio.Semaphore(32)

            async def one(i: int, body: bytes) -> None:
                async with sem:
                    try:
                        r = await client.post(
                            WEBHOOK_PATH,
                            content=body,
                            headers=headers(body, "Balance changed"),
                        )
                    except httpx.HTTPError:
                        return
                    if r.status_code == 200:
                        acked.add(f"burst-{i}")

            async def killer() -> None:
                while len(acked) < 150:
                    await asyncio.sleep(0.005)
                svc.kill()

            await asyncio.gather(
                killer(), *(one(i, b) for i, b in enumerate(deliveries))
            )

    asyncio.run(send_all())
    assert 150 <= len(acked) < len(deliveries), "the kill did not land mid-burst"
    svc.start()
    try:
        ids = [e.id for e in stored(svc.data_dir)]
        assert acked <= set(ids), f"lost: {sorted(acked - set(ids))[:5]}"
        # The sender retries everything that did not get a 2xx.
        for i, body in enumerate(deliveries):
            if f"burst-{i}" not in acked:
                r = post(svc, body, headers(body, "Balance changed"))
                assert r.status_code == 200
        ids = [e.id for e in stored(svc.data_dir)]
        assert sorted(ids) == sorted(f"burst-{i}" for i in range(600))
    finally:
        svc.stop()


def test_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    env = {
        k: v for k, v in ServiceProcess(tmp_path).env.items() if k != "WEBHOOK_SECRET"
    }
    proc = subprocess.run(
        [sys.executable, "-m", "service", "run"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode != 0
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "WEBHOOK_SECRET" in lines[0]
    assert SECRET not in proc.stderr.decode()
