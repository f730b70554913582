"""Every role answers /healthz, /readyz and /metrics, and 404 elsewhere:
a `worker` or `api` process on METRICS_PORT, on SQLite and PostgreSQL,
including the worker that stands by for the lease."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from testkit.launch import ServiceProcess, free_port

pytestmark = pytest.mark.slow


class Probed:
    """A role process started with a probe port."""

    def __init__(self, data_dir: Path, role: str, **env: str) -> None:
        self.port = free_port()
        self.proc = ServiceProcess(
            data_dir, command=(role,), METRICS_PORT=str(self.port), **env
        )

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=5)

    def gauge(self, name: str, **labels: str) -> float | None:
        for family in text_string_to_metric_families(self.get("/metrics").text):
            for s in family.samples:
                wanted = all(s.labels.get(k) == v for k, v in labels.items())
                if s.name == name and wanted:
                    return s.value
        return None

    def wait_ready(self, timeout: float = 15.0) -> httpx.Response:
        deadline = time.monotonic() + timeout
        while True:
            answer = self.get("/readyz")
            if answer.status_code == 200 or time.monotonic() > deadline:
                return answer
            time.sleep(0.1)


@pytest.fixture
def started() -> Iterator[list[Probed]]:
    procs: list[Probed] = []
    yield procs
    for p in reversed(procs):
        p.proc.stop()


def start(procs: list[Probed], data_dir: Path, role: str, **env: str) -> Probed:
    p = Probed(data_dir, role, **env)
    procs.append(p)
    p.proc.start()
    return p


def assert_probes(p: Probed) -> None:
    assert p.get("/healthz").json() == {"status": "alive"}
    missing = p.get("/someone@example.com")
    assert missing.status_code == 404
    assert "someone" not in missing.text  # the path is never echoed
    assert p.get("/").status_code == 404
    assert "# TYPE loyalty_ready gauge" in p.get("/metrics").text


def test_api_role_on_sqlite(tmp_path: Path, started: list[Probed]) -> None:
    api = start(started, tmp_path, "api")
    assert_probes(api)
    ready = api.wait_ready()
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"store": True, "store_space": True},
    }
    assert api.gauge("loyalty_ready", check="store") == 1
    # No worker here: it never holds the lease (alerts take the max).
    assert api.gauge("loyalty_worker_lease_held") == 0


def test_worker_role_on_sqlite_holds_the_only_lease(
    tmp_path: Path, started: list[Probed]
) -> None:
    worker = start(started, tmp_path, "worker")
    assert_probes(worker)
    ready = worker.wait_ready()
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "status": "ready",
        "checks": {"store": True, "store_space": True, "projections": True},
        "lease": "held",
    }
    assert worker.gauge("loyalty_worker_lease_held") == 1
    assert '"event": "holding the worker lease; applying"' in worker.proc.log()


def test_postgres_worker_and_standby_are_both_ready(
    tmp_path: Path, pg_url: str, started: list[Probed]
) -> None:
    first = start(started, tmp_path, "worker", DATABASE_URL=pg_url)
    assert first.wait_ready().json()["lease"] == "held"
    second = start(started, tmp_path, "worker", DATABASE_URL=pg_url)
    assert_probes(second)
    standby = second.wait_ready()
    assert standby.status_code == 200, standby.text
    assert standby.json()["lease"] == "standing by"
    assert second.gauge("loyalty_worker_lease_held") == 0
    assert first.gauge("loyalty_worker_lease_held") == 1
    assert "standing by: another worker holds the lease" in second.proc.log()

    first.proc.stop()  # the standby takes over within about a second
    deadline = time.monotonic() + 15
    while second.get("/readyz").json().get("lease") != "held":
        assert time.monotonic() < deadline, second.proc.log()
        time.sleep(0.2)
    assert second.gauge("loyalty_worker_lease_held") == 1
    assert '"event": "holding the worker lease; applying"' in second.proc.log()
    stopped = first.proc.log()
    assert '"event": "stopped"' in stopped and '"uptime_s"' in stopped


def test_postgres_api_role(tmp_path: Path, pg_url: str, started: list[Probed]) -> None:
    api = start(started, tmp_path, "api", DATABASE_URL=pg_url)
    assert_probes(api)
    ready = api.wait_ready()
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"store": True, "store_space": True}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_ingress_role(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    env = (
        {"DATABASE_URL": request.getfixturevalue("pg_url")}
        if backend != "sqlite"
        else {}
    )
    with ServiceProcess(tmp_path, command=("ingress",), **env) as ingress:
        get = lambda path: httpx.get(ingress.url + path, timeout=5)  # noqa: E731
        assert get("/healthz").json() == {"status": "alive"}
        ready = get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "checks": {"store": True, "store_space": True},
        }
        missing = get("/someone@example.com")
        assert missing.status_code == 404 and "someone" not in missing.text
        assert "loyalty_ready{" in get("/metrics").text
