"""Filling the check figures from the store and the gRPC API, after the load."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import grpc
from jericommerce.loyalty.v1 import customer_pb2
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc
from jericommerce.loyalty.v1 import projection_service_pb2 as ppb
from jericommerce.loyalty.v1 import projection_service_pb2_grpc as pgrpc

from projections.customer.model import fold, view
from projections.events import RecordedEvent
from service.backends.sqlite.store import open_sqlite
from testkit.customer_message import customer_to_proto
from testkit.killtest.load import SenderStats
from testkit.killtest.report import Report
from testkit.launch import ServiceProcess
from testkit.traffic import Webhook


def _stored(data_dir: Path) -> list[RecordedEvent]:
    store, _, factory = open_sqlite(data_dir)
    try:
        events: list[RecordedEvent] = []
        while batch := store.read(events[-1].position if events else 0, 5000):
            events.extend(batch)
        return events
    finally:
        factory.close()


def _generation(data_dir: Path) -> int:
    """The read-model generation readers see, from the file, read-only."""
    uri = f"file:{data_dir / 'readmodels.sqlite'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as conn:
        row = conn.execute(
            "SELECT value FROM projection_meta WHERE key = 'current'"
        ).fetchone()
    conn.close()
    return int(row[0]) if row else 0


def _customers(channel: grpc.Channel) -> dict[str, customer_pb2.Customer]:
    stub = cgrpc.CustomerServiceStub(channel)
    found: dict[str, customer_pb2.Customer] = {}
    token = ""
    while True:
        page = stub.ListCustomers(
            cpb.ListCustomersRequest(page_size=1000, page_token=token), timeout=30
        )
        for c in page.customers:
            assert c.customer_id not in found, f"listed twice: {c.customer_id}"
            found[c.customer_id] = c
        token = page.next_page_token
        if not token:
            return found


def _caught_up(
    channel: grpc.Channel, timeout: float = 120.0
) -> ppb.GetProjectionStatusResponse:
    stub = pgrpc.ProjectionServiceStub(channel)
    deadline = time.monotonic() + timeout
    while True:
        s = stub.GetProjectionStatus(ppb.GetProjectionStatusRequest(), timeout=10)
        if not s.rebuilding and s.lag == 0 and s.applied_position == s.head_position:
            return s
        if time.monotonic() > deadline:
            raise TimeoutError(f"projections did not catch up: {s}")
        time.sleep(0.05)


def _diff(a: dict[str, Any], b: dict[str, Any]) -> int:
    return sum(1 for k in set(a) | set(b) if a.get(k) != b.get(k))


def check(
    svc: ServiceProcess, sent: list[Webhook], sender: SenderStats, report: Report
) -> None:
    """Fill the check figures of `report` from the store and the gRPC API."""
    started = time.monotonic()
    with grpc.insecure_channel(svc.grpc_target) as channel:
        status = _caught_up(channel)
        live = _customers(channel)
        stored = _stored(svc.data_dir)

        ids = Counter(e.id for e in stored)
        by_position = {e.position: e.id for e in stored}
        acked = {i for i, answers in sender.answers.items() if answers}
        report.acknowledged_ids = len(acked)
        report.stored_events = len(stored)
        report.stored_known = sum(1 for e in stored if e.type is not None)
        report.stored_unknown = report.stored_events - report.stored_known
        report.stored_twice = sum(n - 1 for n in ids.values() if n > 1)
        report.acknowledged_lost = len(acked - set(ids))
        report.sent_not_stored = len({e.id for e in sent} - set(ids))
        for eid, answers in sender.answers.items():
            accepted = sum(1 for s, _ in answers if s == "accepted")
            report.accepted_twice += accepted > 1
            report.committed_answer_lost += accepted == 0
            positions = {p for _, p in answers}
            if len(positions) > 1:
                report.inconsistent_positions += 1
            report.wrong_positions += sum(
                1 for p in positions if by_position.get(p) != eid
            )

        # Applied exactly once: the views against the pure fold of the set.
        per_customer: dict[str, list[RecordedEvent]] = defaultdict(list)
        for e in stored:
            per_customer[e.customer_id].append(e)
        expected: dict[str, customer_pb2.Customer] = {}
        for cid, events in per_customer.items():
            result = fold(cid, events)
            report.expected_dead_letters += len(result.dead)
            if result.state.event_count:
                expected[cid] = customer_to_proto(view(result.state))
        report.dead_letters = status.dead_letters
        report.customers_in_read_models = len(live)
        report.event_count_sum = sum(c.event_count for c in live.values())
        report.expected_event_count_sum = report.stored_known - status.dead_letters
        report.customers_unlike_pure_fold = _diff(live, expected)

        # Equal to a rebuild from scratch.
        rebuild_started = time.monotonic()
        before = _generation(svc.data_dir)
        answer = pgrpc.ProjectionServiceStub(channel).RebuildProjections(
            ppb.RebuildProjectionsRequest(), timeout=10
        )
        assert answer.started, "a rebuild was already running"
        _caught_up(channel)
        report.rebuild_generation = (before, _generation(svc.data_dir))
        rebuilt = _customers(channel)
        report.rebuild_seconds = time.monotonic() - rebuild_started
        report.customers_unlike_rebuild = _diff(live, rebuilt)
    report.check_seconds = time.monotonic() - started
