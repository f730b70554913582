"""Sizes for the full and the smoke run, and what every benchmark shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Sizes:
    rounds: int  # interleaved service / baseline rounds; the best of each counts
    load_seconds: int  # each wrk / h2load measurement
    warmup_seconds: int
    p1_requests: int  # unique signed webhooks for one measured P1 run
    p1_customers: int
    p2_connections: int  # h2load: connections x streams in flight
    p2_streams: int
    p3_events: int
    p3_customers: int  # also P2's store
    p3_rounds: int  # rebuilds, each after a read; one read more at the end
    p4_seconds: int
    p4_probe_interval: float
    p5_customers: tuple[int, int]
    p5_reads: int
    profile_seconds: int


FULL = Sizes(
    rounds=3,
    load_seconds=10,
    warmup_seconds=2,
    p1_requests=120_000,
    p1_customers=10_000,
    p2_connections=8,
    p2_streams=16,
    p3_events=1_000_000,
    p3_customers=100_000,
    p3_rounds=2,
    p4_seconds=15,
    p4_probe_interval=0.01,
    p5_customers=(10_000, 1_000_000),
    p5_reads=5_000,
    profile_seconds=10,
)

SMOKE = Sizes(
    rounds=1,
    load_seconds=1,
    warmup_seconds=1,
    p1_requests=30_000,
    p1_customers=1_000,
    p2_connections=4,
    p2_streams=8,
    p3_events=20_000,
    p3_customers=2_000,
    p3_rounds=1,
    p4_seconds=2,
    p4_probe_interval=0.01,
    p5_customers=(1_000, 20_000),
    p5_reads=500,
    profile_seconds=2,
)


@dataclass
class Context:
    sizes: Sizes
    smoke: bool
    work: Path  # throwaway data (stores, request files)
    out: Path  # kept: logs, profiles, results
    gen_core: int
    server_core: int
    profile: bool
    tools: dict[str, str] = field(default_factory=dict)
    pg_url: str = ""  # --pg: the database; each benchmark makes its own schema
    tracing: bool = False  # P1 and P2 also measure the service with tracing on
    split: bool = False  # P1 and P4 also measure `run --split` (bench/split.py)
    shared: dict[str, Any] = field(default_factory=dict)  # between benchmarks

    def dir(self, name: str) -> Path:
        path = self.work / name
        path.mkdir(parents=True, exist_ok=True)
        return path
