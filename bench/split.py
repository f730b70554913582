"""`python -m bench --split`: P1 and P4 against `run --split` and `run
--split --writer` beside `run`, in the same run, with the CPU of every
process of each shape.

One process (`run`) is pinned to the server core as in P1; the splits
(supervisor, front, projector, and the store's writer process) are not
pinned: they are the shapes that use more cores. CPU per event is each
shape's whole CPU (all its processes) from the start of a round until its
projections have caught up, over the events it accepted: the projection
work a round leaves behind is counted in it, not only what ran while wrk
did.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from bench import client, p4_freshness, procs
from bench.context import Context
from bench.p1_files import request_files
from bench.report import Row
from bench.wrk import WrkResult, ran_out, run_wrk, send_all

SHAPES = ("one", "split", "writer")
# How each shape is named in the rows.
NAMED = {"split": "--split", "writer": "--split --writer"}


def _start(ctx: Context, shape: str, data_dir: Path, name: str) -> procs.Server:
    core = ctx.server_core if shape == "one" else None
    return procs.start_service(
        data_dir,
        core,
        ctx.out / "logs",
        name,
        split=shape != "one",
        writer=shape == "writer",
    )


def _round(
    ctx: Context, server: procs.Server, requests: Path
) -> tuple[WrkResult, float]:
    """One measured wrk run; (its result, CPU µs per accepted event)."""
    cpu = server.cpu_seconds()
    result = run_wrk(ctx, server.http_url, requests, seconds=ctx.sizes.load_seconds)
    result.cpu_share = (server.cpu_seconds() - cpu) / result.seconds
    client.wait_caught_up(server.grpc_target)
    spent = server.cpu_seconds() - cpu
    return result, spent / max(result.accepted, 1) * 1e6


def p1(ctx: Context) -> list[Row]:
    s = ctx.sizes
    warm, mains = request_files(ctx, "p1s", s.rounds)
    runs: dict[str, list[tuple[WrkResult, float]]] = {k: [] for k in SHAPES}
    with contextlib.ExitStack() as stack:
        servers = {
            shape: stack.enter_context(
                _start(ctx, shape, ctx.dir(f"p1s/{shape}"), f"p1-{shape}")
            )
            for shape in SHAPES
        }
        for server in servers.values():
            send_all(ctx, server.http_url, warm)
            client.wait_caught_up(server.grpc_target)
        for main in mains:  # interleaved: noise from elsewhere hits them all
            for shape, server in servers.items():
                runs[shape].append(_round(ctx, server, main))
    best = {k: max(v, key=lambda r: r[0].rps)[0] for k, v in runs.items()}
    cpu = {k: min(c for _, c in v) for k, v in runs.items()}
    each = {k: ", ".join(f"{c:.0f}" for _, c in v) for k, v in runs.items()}
    o = best["one"]
    rates, costs = [], []
    for shape, named in NAMED.items():
        sp = best[shape]
        rates.append(
            Row(
                f"P1 run {named} vs run",
                sp.rps,
                "req/s",
                o.rps,
                sp.rps / o.rps,
                note=f"best of {s.rounds} interleaved rounds; run pinned to one "
                f"core, {named} unpinned; server CPU while wrk ran: run "
                f"{o.cpu_share:.0%}, {named} {sp.cpu_share:.0%} of a core (all "
                f"its processes); non-2xx/errors {o.non2xx + o.errors} / "
                f"{sp.non2xx + sp.errors}"
                f"{ran_out([r for r, _ in runs['one'] + runs[shape]])}",
            )
        )
        costs.append(
            Row(
                f"P1 CPU per event, {named} vs run",
                cpu[shape],
                "µs",
                cpu["one"],
                cpu[shape] / cpu["one"],
                note="every process of the shape, from a round's start until "
                "its projections caught up, per accepted event (best; rounds: "
                f"run {each['one']}, {named} {each[shape]} µs)",
            )
        )
    make_run = Row(
        "P1 CPU per stored and projected event, run",
        cpu["one"],
        "µs",
        target="<= 200 µs",
        passed=cpu["one"] <= 200,
        note="`make run`'s one process, from a round's start until its "
        "projections caught up, per accepted event (best of the rounds: "
        f"{each['one']} µs)",
    )
    return [*rates, make_run, *costs]


def p4(ctx: Context, rate: float, path: Path) -> list[Row]:
    """P4 against each shape in turn, at the same rate, with `path`'s
    requests (each shape has its own store, so they are new to both)."""
    s = ctx.sizes
    got: dict[str, dict[str, float]] = {}
    for shape in SHAPES:
        with _start(ctx, shape, ctx.dir(f"p4s/{shape}"), f"p4-{shape}") as svc:
            cpu, t0 = svc.cpu_seconds(), time.monotonic()
            r = p4_freshness.probe(ctx, svc, rate, path)
            client.wait_caught_up(svc.grpc_target)
            events = r["rate"] * s.p4_seconds
            r["cpu_us"] = (svc.cpu_seconds() - cpu) / max(events, 1) * 1e6
            r["wall"] = time.monotonic() - t0
            got[shape] = r
    o = got["one"]
    rows = []
    for shape, named in NAMED.items():
        sp = got[shape]
        rows.append(
            Row(
                f"P4 freshness p99, {named}",
                sp["p99_ms"],
                "ms",
                o["p99_ms"],
                sp["p99_ms"] / o["p99_ms"],
                target=p4_freshness.TARGET,
                passed=p4_freshness.passed(sp),
                note=f"same rate ({rate:,.0f} webhooks/s asked) against each; "
                f"p50 {sp['p50_ms']:.1f} ms (run {o['p50_ms']:.1f}), max "
                f"{sp['max_ms']:.1f} ms (run {o['max_ms']:.1f}); CPU per event, "
                f"all processes: {named} {sp['cpu_us']:.0f} µs, run "
                f"{o['cpu_us']:.0f} µs; errors {sp['errors']} / {o['errors']}",
            )
        )
    return rows
