"""`loyalty run --split`: a front and a projector process under one
supervisor (and with `--writer`, the store's writer process appending for
the front). Read-your-writes across them, probes, and SIGKILL of each
child: nothing acknowledged is lost and every event is applied exactly
once (a customer's balance and event count say so)."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc
from jericommerce.loyalty.v1 import event_service_pb2 as epb
from jericommerce.loyalty.v1 import event_service_pb2_grpc as egrpc

from service.backends.sqlite.store import open_sqlite
from testkit import procs
from testkit.launch import ServiceProcess, free_port, http_ok, spawn
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH, webhook_body

pytestmark = pytest.mark.slow
CUSTOMERS = [f"split-{i}" for i in range(5)]


class Split:
    def __init__(self, data_dir: Path, writer: bool = False) -> None:
        self.probe_port = free_port()
        self.writer = writer
        command = ("run", "--split", "--writer") if writer else ("run", "--split")
        self.svc = ServiceProcess(
            data_dir, command=command, METRICS_PORT=str(self.probe_port)
        )
        self.children = (
            ("writer", "projector", "front") if writer else ("projector", "front")
        )
        self.channel: grpc.Channel | None = None
        self.acked: dict[str, tuple[str, int]] = {}  # event id: customer, position
        self.lock = threading.Lock()

    def child_pid(self, name: str) -> int:
        """The pid of the newest start of child `name`, from the supervisor's log."""
        return procs.started_child(self.svc.log(), name)

    def restarts(self, name: str) -> int:
        return sum(
            1
            for e in log_entries(self.svc.log())
            if e.get("event") == "child exited; restarting" and e.get("child") == name
        )

    def deliver(self, event_id: str, customer: str, deadline: float = 30) -> int:
        """Post until acknowledged (2xx), as a sender retries; the position."""
        body = webhook_body(event_id, customer, amount=1)
        give_up = time.monotonic() + deadline
        while True:
            try:
                r = httpx.post(
                    self.svc.url + WEBHOOK_PATH,
                    content=body,
                    headers=headers(body, "Balance changed"),
                    timeout=5,
                )
                if r.status_code == 200:
                    position = int(r.json()["position"])
                    with self.lock:
                        self.acked[event_id] = (customer, position)
                    return position
            except httpx.HTTPError:
                pass  # the front is down or restarting: retry
            assert time.monotonic() < give_up, f"{event_id} never acknowledged"
            time.sleep(0.05)

    def customer(self, customer: str, min_position: int, timeout: float = 5) -> object:
        assert self.channel is not None
        stub = cgrpc.CustomerServiceStub(self.channel)
        return stub.GetCustomer(
            cpb.GetCustomerRequest(customer_id=customer, min_position=min_position),
            timeout=timeout,
        )


def log_entries(text: str) -> Iterator[dict[str, object]]:
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                yield json.loads(line)
            except ValueError:
                continue  # a line torn by a SIGKILL


def wait_for(ok: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ok():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture(params=[False, True], ids=["split", "split-writer"])
def split(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Split]:
    s = Split(tmp_path, writer=request.param)
    s.svc.start()
    s.channel = grpc.insecure_channel(s.svc.grpc_target)
    try:
        yield s
    finally:
        s.channel.close()
        s.svc.stop()


def test_kill_either_child_loses_nothing_and_applies_once(split: Split) -> None:
    # Both children answer their probes: the front on HTTP_PORT, the
    # projector on METRICS_PORT.
    probes = f"http://127.0.0.1:{split.probe_port}"
    wait_for(lambda: http_ok(probes + "/readyz") and http_ok(probes + "/healthz"))
    assert "loyalty_worker_lease_held 1.0" in httpx.get(probes + "/metrics").text
    assert http_ok(split.svc.url + "/healthz")
    if split.writer:  # the front appends through the writer process
        assert any(
            e.get("event") == "connected to the store's writer process"
            for e in log_entries(split.svc.log())
        )

    # Read-your-writes through the link: the front commits, the projector
    # applies, the front hears it; quickly, not at the 1 s polls.
    n, started = 0, time.monotonic()
    for _ in range(3):
        for customer in CUSTOMERS:
            n += 1
            position = split.deliver(f"ev-{n}", customer)
            assert split.customer(customer, position).event_count >= 1  # type: ignore[attr-defined]
    assert time.monotonic() - started < 5, "15 writes and reads: the link is not heard"

    # Traffic goes on in the background while each child is killed.
    stop = threading.Event()

    def traffic() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            split.deliver(f"bg-{i}", CUSTOMERS[i % len(CUSTOMERS)])

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        for child in split.children:
            time.sleep(0.5)
            before, pid = split.restarts(child), split.child_pid(child)
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda c=child, b=before: split.restarts(c) > b)  # type: ignore[misc]
            wait_for(lambda c=child, p=pid: split.child_pid(c) != p)  # type: ignore[misc]
            wait_for(lambda: http_ok(split.svc.url + "/readyz"))
            time.sleep(0.5)  # traffic through the restarted child
    finally:
        stop.set()
        sender.join(60)
    assert split.svc.proc is not None and split.svc.proc.poll() is None

    # Every acknowledged event is stored once and applied once: each event
    # adds 1 point and 1 to the count, so balance == count == acknowledged.
    head = max(position for _, position in split.acked.values())
    for customer in CUSTOMERS:
        expected = sum(1 for c, _ in split.acked.values() if c == customer)
        got = split.customer(customer, head, timeout=30)
        assert (got.points_balance, got.event_count) == (expected, expected)  # type: ignore[attr-defined]
    events, _, factory = open_sqlite(split.svc.data_dir)
    try:
        stored = [e.id for e in events.read(0, 10**6)]
    finally:
        factory.close()
    assert sorted(stored) == sorted(split.acked)


def test_a_follower_on_the_front_hears_each_event_at_once(split: Split) -> None:
    """StreamEvents(follow) on the front is pushed each new event, not left
    to its one-second poll: the front's own commits (or, with the writer
    process, the writer's replies) move its head."""
    assert split.channel is not None
    stub = egrpc.EventServiceStub(split.channel)
    stream = stub.StreamEvents(
        epb.StreamEventsRequest(after_position=0, follow=True), timeout=60
    )
    heard: queue.Queue[tuple[int, float]] = queue.Queue()

    def read() -> None:
        with contextlib.suppress(grpc.RpcError):  # cancelled at the end
            for item in stream:
                if item.HasField("event"):
                    heard.put((item.event.position, time.monotonic()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        waits = []
        for i in range(10):
            position = split.deliver(f"follow-{i}", CUSTOMERS[i % len(CUSTOMERS)])
            answered = time.monotonic()
            got, at = heard.get(timeout=10)
            assert got == position
            waits.append(at - answered)
            time.sleep(0.05)
    finally:
        stream.cancel()
        reader.join(10)
    # A poll would put the median near half a second (heard between 0 and 1 s
    # after each answer); pushed, it is a few milliseconds.
    assert statistics.median(waits) < 0.25, waits


def test_a_front_that_cannot_listen_stops_the_split(tmp_path: Path) -> None:
    """Restarting cannot free a port another program holds: the supervisor
    says so and exits 4, as `run` does, instead of restarting forever."""
    svc = ServiceProcess(tmp_path, command=("run", "--split"))
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", svc.http_port))
        taken.listen()
        proc = spawn(
            [sys.executable, "-m", "service", "run", "--split"], svc.log_path, svc.env
        )
        try:
            assert proc.wait(60) == 4, svc.log()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert any(
        e.get("event") == "child cannot listen; stopping"
        for e in log_entries(svc.log())
    )


def test_children_stop_when_the_supervisor_is_killed(split: Split) -> None:
    """Nothing goes on serving unsupervised after a SIGKILL of the supervisor."""
    children = [split.child_pid(name) for name in split.children]
    assert all(procs.running(pid) for pid in children)
    split.svc.kill()
    wait_for(lambda: not any(procs.running(pid) for pid in children), timeout=15)


@pytest.mark.parametrize(
    ("argv", "extra", "says"),
    [
        (("run", "--writer"), {}, "--writer is for `run --split`"),
        (
            ("run", "--split", "--writer"),
            {"DATABASE_URL": "postgresql://127.0.0.1:5432/test"},
            "postgres is a writer itself",
        ),
    ],
    ids=["without-split", "on-postgresql"],
)
def test_a_writer_process_is_refused_where_it_has_no_place(
    tmp_path: Path, argv: tuple[str, ...], extra: dict[str, str], says: str
) -> None:
    """A clear refusal (exit 2) before anything starts, not a shape that
    half works."""
    env = {**os.environ, "DATA_DIR": str(tmp_path), "WEBHOOK_SECRET": "s3cret"}
    done = subprocess.run(
        [sys.executable, "-m", "service", *argv],
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert says in done.stderr
    assert not list(tmp_path.iterdir())  # nothing made on the way
