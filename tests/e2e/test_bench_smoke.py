"""`python -m bench --smoke` (what `make bench-smoke` runs) still works: every
benchmark runs and the table has a number in every row, so the suite can't
rot. The figures themselves are not judged here; `make bench` does that."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.launch import ROOT

pytestmark = pytest.mark.slow

ROWS = (
    "P1 ingest path (service ingress), 64 connections",
    "P1 ingest path, ingress + the store's writer process",
    "P1 writer shape, ceiling of the ingress's core",
    "P1 writer shape, ceiling of the load generator's core",
    "P1 make run (one process), 64 connections",
    "P1 vs bare Sanic on asyncio loop",
    "P1 latency p50",
    "P1 latency p99",
    "P1 every 2xx stored",
    "P4 freshness p99",
    "P3 rebuild",
    "P2 GetCustomer",
    "P2 GetCustomer, random customers",
    "P1 ladder: + the service's webhook handler",
    "P1 ladder: + the group commit, to a store that waits 2 ms",
    "P1 ladder: + the append (group commit, no projections)",
    "P1 ladder: + the projections (the service)",
    "P5 peak RSS at 20,000 customers",
    "P1 with tracing on",
    "P2 GetCustomer with tracing on",
    "P1 CPU per stored and projected event, run",
    "P1 run --split vs run",
    "P4 freshness p99, --split",
    "P1 run --split --writer vs run",
    "P4 freshness p99, --split --writer",
    "P1 CPU per event, --split --writer vs run",
    "P6 replay, typed payloads",
)


def test_smoke_run_fills_every_row(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if run.returncode == 2 and "is missing" in run.stderr:
        pytest.skip(run.stderr.strip())  # wrk / h2load absent and we are not root
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    results = json.loads((tmp_path / "results.json").read_text())
    rows = {r["name"]: r for r in results["rows"]}
    assert set(ROWS) <= set(rows), sorted(rows)
    for name in ROWS:
        figure = rows[name]["figure"]
        assert isinstance(figure, float | int) and figure > 0, (name, rows[name])
    for name in (
        "P1 ingest path (service ingress), 64 connections",
        "P1 ingest path, ingress + the store's writer process",
        "P2 GetCustomer",
        "P3 rebuild",
    ):
        assert rows[name]["baseline"] > 0 and rows[name]["ratio"] > 0, rows[name]
    assert rows["P1 every 2xx stored"]["passed"] is True, rows["P1 every 2xx stored"]

    table = run.stdout
    for name in ROWS:
        line = next(x for x in table.splitlines() if x.startswith(f"| {name} "))
        assert any(c.isdigit() for c in line.split("|")[2]), line
