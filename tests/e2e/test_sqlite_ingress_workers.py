"""`loyalty ingress --workers 2` on SQLite: two ingress processes sharing
HTTP_PORT and the store's writer process they send to, under one
supervisor. SIGKILL of the writer or of an ingress while a sender retries:
every acknowledged event is stored exactly once, and readiness says when
an ingress cannot reach the writer."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from service.backends.sqlite.store import open_sqlite
from testkit.launch import ServiceProcess, free_port, http_ok, wait_until
from testkit.procs import started_child
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH, webhook_body

pytestmark = pytest.mark.slow


def writer_linked(svc: ServiceProcess) -> bool:
    """The ingress's readiness names the writer check, and it holds."""
    checks = httpx.get(svc.url + "/readyz").json()["checks"]
    return checks.get("writer") is True


def wait_for(svc: ServiceProcess, ok: Callable[[], bool]) -> None:
    assert svc.proc is not None
    wait_until(ok, svc.proc, 30, svc.log)


def deliver(
    url: str, event_id: str, acked: dict[str, int], lock: threading.Lock
) -> None:
    """Post until acknowledged (2xx), as a sender retries."""
    body = webhook_body(event_id, "cus-w", amount=1)
    give_up = time.monotonic() + 30
    while True:
        try:
            r = httpx.post(
                url + WEBHOOK_PATH,
                content=body,
                headers=headers(body, "Balance changed"),
                timeout=5,
            )
            if r.status_code == 200:
                with lock:
                    acked[event_id] = int(r.json()["position"])
                return
            assert r.status_code == 503, r.text  # the writer is away: retry
        except httpx.HTTPError:
            pass  # an ingress restarting
        assert time.monotonic() < give_up, f"{event_id} never acknowledged"
        time.sleep(0.02)


def test_killing_the_writer_or_an_ingress_loses_nothing_and_stores_once(
    tmp_path: Path,
) -> None:
    probes = free_port()
    svc = ServiceProcess(
        tmp_path, command=("ingress", "--workers", "2"), METRICS_PORT=str(probes)
    ).start()
    try:
        wait_for(svc, lambda: http_ok(f"http://127.0.0.1:{probes}/readyz"))
        # The ingress connects to the writer once the writer listens (it
        # retries with back-off): ready, with its writer check, soon after.
        wait_for(svc, lambda: writer_linked(svc))
        acked: dict[str, int] = {}
        lock, stop = threading.Lock(), threading.Event()

        def traffic(name: str) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                deliver(svc.url, f"{name}-{i}", acked, lock)

        senders = [threading.Thread(target=traffic, args=(f"s{n}",)) for n in range(4)]
        for t in senders:
            t.start()
        try:
            for child in ("writer", "ingress-0", "writer"):
                time.sleep(0.7)
                pid = started_child(svc.log(), child)
                before = len(acked)
                os.kill(pid, signal.SIGKILL)
                wait_for(svc, lambda c=child, p=pid: started_child(svc.log(), c) != p)  # type: ignore[misc]
                wait_for(svc, lambda b=before: len(acked) > b + 20)  # type: ignore[misc]
        finally:
            stop.set()
            for t in senders:
                t.join(60)
        assert svc.proc is not None and svc.proc.poll() is None
        wait_for(svc, lambda: writer_linked(svc))
        # The writer's log says when the ingress processes came and went.
        assert '"event": "ingress connected"' in svc.log()
        assert '"event": "lost the store\'s writer process"' in svc.log()
    finally:
        svc.stop()
    events, _, factory = open_sqlite(tmp_path)
    try:
        stored = {e.id: e.position for e in events.read(0, 10**6)}
    finally:
        factory.close()
    assert len(acked) > 60
    # Each acknowledged event at the position its answer named, and no other.
    assert stored == acked
