"""P3 on PostgreSQL: the events of SQLite P3, appended through
EventStore.append, then a full rebuild into PostgreSQL read models, timed in
a child process (`python -m bench.pg measure URL`), against reading them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from bench import data, p3_rebuild, procs
from bench.context import Context
from bench.report import Row
from bench.tools import pinned

if TYPE_CHECKING:
    pass
from bench.pgdb import fresh_schema, master_key, master_key_file

P3_TARGET = 30_000


def read_all(url: str) -> tuple[int, float]:
    from service.backends.postgres.store import open_postgres

    store, _, factory = open_postgres(url, master_key())
    try:
        return p3_rebuild.time_read(store)
    finally:
        factory.close()


def rebuild_all(url: str) -> tuple[int, float]:
    from projections.stores.postgres import open_postgres_read_models
    from service.backends.postgres.backend import PostgresBackend
    from service.backends.postgres.store import open_postgres

    store, _, factory = open_postgres(url, master_key())
    from service.rpc.answers import ANSWERS

    models = open_postgres_read_models(url, ANSWERS)  # answers stored too
    try:
        backend = PostgresBackend(url, master_key_file())
        return p3_rebuild.time_rebuild(store, models, backend)
    finally:
        models.db.close()
        factory.close()


def _child(what: str, url: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "bench.pg", what, url]
    return subprocess.Popen(
        pinned(argv, None), cwd=procs.ROOT, stdout=subprocess.PIPE, text=True
    )


def run_p3(ctx: Context) -> list[Row]:
    from service.backends.postgres.store import open_postgres

    s = ctx.sizes
    with fresh_schema(ctx.pg_url, "p3") as url:
        print(f"  appending {s.p3_events:,} events for {s.p3_customers:,} customers")
        started = time.perf_counter()
        store, _, factory = open_postgres(url, master_key())
        try:
            data.fill(
                store, s.p3_events, s.p3_customers, tag="p3", progress=not ctx.smoke
            )
        finally:
            factory.close()
        filled = time.perf_counter() - started
        print(f"  appended in {filled:.0f} s; timing ...", flush=True)
        child = _child("measure", url)
        out, _ = child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"pg p3 child failed ({child.returncode})")
        if ctx.profile:
            _profile_p3(ctx, url)
    r = json.loads(out.strip().splitlines()[-1])
    read_eps, rebuild_eps = r["read"] / r["read_s"], r["rebuilt"] / r["rebuild_s"]
    return [
        Row(
            "P3 rebuild on PostgreSQL",
            rebuild_eps,
            "events/s",
            read_eps,
            rebuild_eps / read_eps,
            f">= {P3_TARGET:,} events/s",
            rebuild_eps >= P3_TARGET,
            note=f"{r['rebuilt']:,} events of {s.p3_customers:,} customers rebuilt "
            f"into PostgreSQL read models in {r['rebuild_s']:.1f} s; baseline: the "
            "same events read and decoded (EventStore.read, "
            f"{p3_rebuild.READ_BATCH} a batch) "
            f"in {r['read_s']:.1f} s (best of a read before and one after). Both "
            "in an unpinned child process; PostgreSQL on the same two cores. "
            f"Appending them took {filled:.0f} s ({s.p3_events / filled:,.0f} "
            "events/s, batches of 1,000)",
        )
    ]


def _profile_p3(ctx: Context, url: str) -> None:
    """Sample a second, whole rebuild of the same events."""
    p3_rebuild.profile_child(
        ctx,
        _child("rebuild", url),
        "profile-pg-p3.txt",
        "P3 rebuild on PostgreSQL (projections.rebuild.rebuild)",
    )
