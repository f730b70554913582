"""P6 replay: one client replays the whole store over gRPC (StreamEvents from
position 0, as fast as it reads), with typed payloads, against the same replay
from the same API without them (bench/baselines/untyped_api.py), interleaved
in the same run. Both servers are `loyalty api` on P3's store (or a store of
P3's size made here when P3 did not run), pinned to the server core; the
client runs in a child on the load generators' core:

    python -m bench.p6_replay client TARGET      # prints one JSON line
    python -m bench.p6_replay measure [--events N] [--rounds R]   # P6 alone
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import data, procs, report
from bench.context import FULL, Context
from bench.report import Row
from bench.tools import client_result, cores, pin_self

TARGET_RATIO = 0.8


def replay(target: str) -> dict[str, float]:
    """Read every item of one unfiltered, finite StreamEvents call, touching
    each event's payload as a consumer would."""
    import grpc
    from jericommerce.loyalty.v1 import event_service_pb2 as epb
    from jericommerce.loyalty.v1 import event_service_pb2_grpc as egrpc

    events = typed = 0
    with grpc.insecure_channel(target) as channel:
        stub = egrpc.EventServiceStub(channel)
        started = time.perf_counter()
        for item in stub.StreamEvents(epb.StreamEventsRequest(), timeout=3600):
            if item.WhichOneof("item") == "event":
                events += 1
                if item.event.WhichOneof("payload") is not None:
                    typed += 1
        seconds = time.perf_counter() - started
    return {"events": events, "typed": typed, "seconds": seconds}


def _client(ctx: Context, target: str) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.p6_replay", "client", target]
    return client_result(argv, ctx.gen_core, procs.ROOT)


def run(ctx: Context) -> list[Row]:
    s = ctx.sizes
    data_dir = ctx.shared.get("p3_store")
    if data_dir is None:
        data_dir = ctx.dir("p6/store")
        print(f"  appending {s.p3_events:,} events for {s.p3_customers:,} customers")
        data.populate(
            data_dir, s.p3_events, s.p3_customers, tag="p6", progress=not ctx.smoke
        )
    best: dict[str, dict[str, float]] = {}
    servers = {"typed": "service", "untyped": "bench.baselines.untyped_api"}
    for round_ in range(s.rounds):
        for kind, module in servers.items():
            name = f"p6_{kind}_{round_}"
            with procs.start_api(
                data_dir, ctx.server_core, ctx.out, name, module
            ) as server:
                r = _client(ctx, server.grpc_target)
            rate = r["events"] / r["seconds"]
            print(f"  round {round_ + 1}, {kind}: {rate:,.0f} events/s", flush=True)
            if kind not in best or rate > best[kind]["events"] / best[kind]["seconds"]:
                best[kind] = r
    typed, untyped = best["typed"], best["untyped"]
    if typed["events"] != untyped["events"] or typed["typed"] == 0:
        raise RuntimeError(f"the two replays differ: {typed} vs {untyped}")
    if untyped["typed"] != 0:
        raise RuntimeError("the baseline replayed typed payloads")
    typed_eps = typed["events"] / typed["seconds"]
    untyped_eps = untyped["events"] / untyped["seconds"]
    ratio = typed_eps / untyped_eps
    return [
        Row(
            "P6 replay, typed payloads",
            typed_eps,
            "events/s",
            untyped_eps,
            ratio,
            f">= {TARGET_RATIO}x",
            ratio >= TARGET_RATIO,
            note=f"{typed['events']:,.0f} events ({typed['typed']:,.0f} with a "
            f"payload) replayed by one Python client over gRPC in "
            f"{typed['seconds']:.1f} s; baseline: the same replay from the same "
            "API with payloads turned off, in "
            f"{untyped['seconds']:.1f} s (best of {s.rounds} interleaved rounds)",
        )
    ]


def measure(events: int, rounds: int) -> list[Row]:
    """P6 alone on a store of `events` events (a tenth as many customers),
    in a temporary directory: the figure on a machine too busy for P3's size."""
    gen_core, server_core = cores()
    pin_self(gen_core)
    work = Path(tempfile.mkdtemp(prefix="loyalty-p6-"))
    sizes = dataclasses.replace(
        FULL, p3_events=events, p3_customers=max(1, events // 10), rounds=rounds
    )
    ctx = Context(sizes, False, work, work, gen_core, server_core, profile=False)
    try:
        return run(ctx)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.p6_replay")
    commands = parser.add_subparsers(dest="what", required=True)
    client = commands.add_parser("client", help="replay TARGET once, print JSON")
    client.add_argument("target")
    alone = commands.add_parser("measure", help="P6 alone on a store of N events")
    alone.add_argument("--events", type=int, default=200_000)
    alone.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.what == "client":
        print(json.dumps(replay(args.target)))
        return
    rows = measure(args.events, args.rounds)
    print(report.table(rows) + "\n\n" + report.notes(rows))


if __name__ == "__main__":
    main()
