"""P5 memory: the service's resident memory with a small and a large store.

For each size, one event per customer is appended straight into a fresh
store; the service is started on it, its worker projects every customer
(timed: the live catch-up rate), then a burst of GetCustomer calls at random
customers runs, and VmRSS / VmHWM (peak) are read from /proc/PID/status.
"""

from __future__ import annotations

import random
import time

from bench import client, data, procs
from bench.context import Context
from bench.report import Row
from testkit import traffic


def measure(ctx: Context, customers: int) -> dict[str, float]:
    data_dir = ctx.dir(f"p5/store-{customers}")
    started = time.perf_counter()
    head = data.populate(
        data_dir, customers, customers, tag=f"p5-{customers}", progress=not ctx.smoke
    )
    print(
        f"  {customers:,} customers appended in {time.perf_counter() - started:.0f} s"
    )
    with procs.start_service(
        data_dir, ctx.server_core, ctx.out / "logs", f"p5-service-{customers}"
    ) as svc:
        client.wait_caught_up(svc.grpc_target)
        caught_up = time.monotonic() - svc.started  # from spawn: a lower bound
        rng = random.Random(customers)
        ids = [
            traffic.customer_id(rng.randrange(customers))
            for _ in range(ctx.sizes.p5_reads)
        ]
        client.get_customers(svc.grpc_target, ids)
        mem = svc.memory_kb()
    return {
        "rss_mb": mem["VmRSS"] / 1024,
        "hwm_mb": mem["VmHWM"] / 1024,
        "catch_up_s": caught_up,
        "catch_up_eps": head / max(caught_up, 1e-9),
    }


def run(ctx: Context) -> list[Row]:
    small_n, large_n = ctx.sizes.p5_customers
    small, large = measure(ctx, small_n), measure(ctx, large_n)
    growth = large["hwm_mb"] / small["hwm_mb"]
    return [
        Row(
            f"P5 peak RSS at {large_n:,} customers",
            large["hwm_mb"],
            "MB",
            small["hwm_mb"],
            growth,
            "< 300 MB, <= 1.5x",
            large["hwm_mb"] < 300 and growth <= 1.5,
            note=f"baseline: the same service at {small_n:,} customers. VmRSS at the "
            f"end {large['rss_mb']:.0f} MB vs {small['rss_mb']:.0f} MB; peak (VmHWM) "
            "is the figure. 'Roughly flat' is read as at most 1.5x. The worker "
            f"projected the {large_n:,} customers live at "
            f"{large['catch_up_eps']:,.0f} events/s ({large['catch_up_s']:.1f} s)",
        )
    ]
