"""The probe app alone: /readyz fails (503) with the failing check when the
store cannot be reached, and says what the worker's lease is doing."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from service.diskspace import WriteSpace
from service.eventstore import StoreUnavailable
from service.health import HealthWatch
from service.metrics import Metrics
from service.probes import probe_app


class Store:
    def __init__(self) -> None:
        self.up = True
        self.space = WriteSpace(self.ping)

    def ping(self) -> None:
        if not self.up:
            raise StoreUnavailable("connection refused")


@dataclass
class Status:
    running: bool = True
    leader: bool = False
    standing_by: bool = False

    @property
    def ready(self) -> bool:
        return self.running and (self.leader or self.standing_by)


class Worker:
    def __init__(self) -> None:
        self.now = Status()

    def status(self) -> Status:
        return self.now


def watch(store: Store, worker: Worker | None, metrics: Metrics) -> HealthWatch:
    return HealthWatch(
        events=store,  # type: ignore[arg-type]
        models=None,  # type: ignore[arg-type]
        quarantine=None,  # type: ignore[arg-type]
        metrics=metrics,
        head=None,  # type: ignore[arg-type]
        applied=None,  # type: ignore[arg-type]
        worker=worker,  # type: ignore[arg-type]
        follow_events=True,
        retention_days=30,
    )


def get(app: object, path: str) -> tuple[int, dict[str, object] | str]:
    _, answer = app.test_client.get(path)  # type: ignore[attr-defined]
    if answer.content_type.startswith("application/json"):
        return answer.status, answer.json
    return answer.status, answer.text


def test_readyz_follows_the_store_and_the_gauge_with_it() -> None:
    store, metrics = Store(), Metrics()
    w = watch(store, None, metrics)
    app = probe_app(w.ready, metrics.exposition, w.describe)
    ready = {"store": True, "store_space": True}
    assert get(app, "/readyz") == (200, {"status": "ready", "checks": ready})
    store.up = False
    assert get(app, "/readyz") == (
        503,
        {"status": "not ready", "checks": {"store": False, "store_space": True}},
    )
    assert metrics.registry.get_sample_value("loyalty_ready", {"check": "store"}) == 0
    assert get(app, "/healthz") == (200, {"status": "alive"})  # alive all the same


@pytest.mark.parametrize(
    ("status", "code", "lease"),
    [
        (Status(leader=True), 200, "held"),
        (Status(standing_by=True), 200, "standing by"),
        # Started, but the lease's database has not answered yet.
        (Status(), 503, "not acquired"),
        (Status(running=False, leader=True), 503, "held"),
    ],
)
def test_worker_is_ready_holding_the_lease_or_standing_by(
    status: Status, code: int, lease: str
) -> None:
    worker, metrics = Worker(), Metrics()
    worker.now = status
    w = watch(Store(), worker, metrics)
    answer = get(probe_app(w.ready, metrics.exposition, w.describe), "/readyz")
    assert answer[0] == code
    assert isinstance(answer[1], dict) and answer[1]["lease"] == lease
    expected = 1 if code == 200 else 0
    assert (
        metrics.registry.get_sample_value("loyalty_ready", {"check": "projections"})
        == expected
    )


def test_other_paths_are_404_without_echoing_them() -> None:
    metrics = Metrics()
    w = watch(Store(), None, metrics)
    app = probe_app(w.ready, metrics.exposition)
    status, body = get(app, "/private/jane.doe@example.com")
    assert status == 404 and "jane" not in str(body)
    status, body = get(app, "/metrics")
    assert status == 200 and "loyalty_webhooks" in str(body)
