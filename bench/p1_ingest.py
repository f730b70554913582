"""P1 ingest: unique signed webhooks from wrk, 64 connections, against the
service and against a bare Sanic app answering the same POST with a constant.

Afterwards the service is killed (SIGKILL) and its store is opened: every
position a 2xx answer named must be there, once.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from bench import client, procs, profiling, traced
from bench.context import Context
from bench.p1_files import request_files, round_files, unique_requests, warm_file
from bench.p1_writer import writer_rows
from bench.report import Row
from bench.wrk import WrkResult, ran_out, run_wrk, send_all
from testkit import procs as proc_info


def verify_stored(data_dir: Path, positions: list[Path]) -> tuple[int, int, int]:
    """(2xx-accepted positions, how many of them are stored, rows stored)."""
    answered = [int(x) for p in positions for x in p.read_text().split()]
    db = sqlite3.connect(data_dir / "events.sqlite")
    try:
        stored = {r[0] for r in db.execute("SELECT rowid FROM stored_events")}
    finally:
        db.close()
    unique = set(answered)
    found = len(unique & stored) if len(unique) == len(answered) else -1
    return len(answered), found, len(stored)


def measured(
    ctx: Context, server: procs.Server, requests: Path, **kw: Any
) -> WrkResult:
    """A wrk run against `server`, with the server's CPU use over it."""
    cpu = server.cpu_seconds()
    result = run_wrk(
        ctx, server.http_url, requests, seconds=ctx.sizes.load_seconds, **kw
    )
    result.cpu_share = (server.cpu_seconds() - cpu) / result.seconds
    return result


def _mean(metrics: dict[str, float], histogram: str) -> float | None:
    count = metrics.get(f"{histogram}_count")
    return metrics[f"{histogram}_sum"] / count if count else None


# The ladder's group-commit step: a commit's wall time on this kind of
# machine (SQLite's fsync, GIL released), without the append's own work.
FAKE_COMMIT_MS = 2.0


def best(results: list[WrkResult]) -> WrkResult:
    """Noise on a shared machine only ever slows a run down: keep the fastest."""
    return max(results, key=lambda r: r.rps)


def run(ctx: Context) -> list[Row]:
    s = ctx.sizes
    # The ladder's store-only step and the writer shape need never-seen
    # events of their own; the rounds' files are sized after the warm-up.
    warm, warm_i, warm_w = (warm_file(ctx, tag) for tag in ("p1", "p1i", "p1w"))
    logs, core = ctx.out / "logs", ctx.server_core
    data_dir = ctx.dir("p1/store")
    bare_runs: list[WrkResult] = []
    asyncio_runs: list[WrkResult] = []
    svc_runs: list[WrkResult] = []
    handler_runs: list[WrkResult] = []
    grouped_runs: list[WrkResult] = []
    ingress_runs: list[WrkResult] = []
    writer_runs: list[WrkResult] = []
    writer_own: list[float] = []  # the ingress process's CPU seconds, a round
    traced_runs: list[WrkResult] = []
    positions = [ctx.dir("p1") / f"accepted-{r}.txt" for r in range(s.rounds)]
    with (
        procs.start_bare_sanic(core, logs, "uvloop") as bare,
        procs.start_bare_sanic(core, logs, "asyncio") as bare_asyncio,
        procs.start_webhook_handler(core, logs) as handler,
        procs.start_webhook_handler(core, logs, FAKE_COMMIT_MS) as grouped,
        procs.start_ingress_only(
            ctx.dir("p1/ingress-store"), core, logs, "p1-ingress"
        ) as ingress,
        procs.start_ingress_writer(
            ctx.dir("p1/writer-store"), core, ctx.gen_core, logs, "p1-writer"
        ) as writer,
        procs.start_service(data_dir, core, logs, "p1-service") as svc,
        # Its own store: the same requests are new to it.
        traced.service(ctx, "p1-traced", ctx.dir("p1/traced-store")) as on,
    ):

        def warm_up(server: procs.Server) -> WrkResult:
            return run_wrk(
                ctx, server.http_url, warm, seconds=s.warmup_seconds, mode="wrap"
            )

        def rate(server: procs.Server, requests: Path, **kw: Any) -> WrkResult:
            return measured(ctx, server, requests, bodies=False, **kw)

        # The bare app's rate, which no shape outruns, sizes the rounds' files.
        unique = unique_requests(ctx, warm_up(bare).rps)
        for server in (bare_asyncio, handler, grouped):
            warm_up(server)
        mains, mains_i, mains_w = (
            round_files(ctx, tag, s.rounds, unique) for tag in ("p1", "p1i", "p1w")
        )
        send_all(ctx, ingress.http_url, warm_i)
        send_all(ctx, writer.http_url, warm_w)
        send_all(ctx, svc.http_url, warm)
        client.wait_caught_up(svc.grpc_target)
        if on is not None:
            send_all(ctx, on[0].http_url, warm)
            client.wait_caught_up(on[0].grpc_target)
        # Interleaved rounds, so a burst of load from elsewhere hits all three.
        # The rounds that give only a rate leave the answers' bodies unread:
        # the writer shape's writer shares wrk's core, and reading them
        # costs that core 2 to 4 us a request (wrk_replay.lua). make run's
        # rounds read them, for the accepted positions checked after kill -9.
        for r, main in enumerate(mains):
            bare_runs.append(rate(bare, main, mode="wrap"))
            asyncio_runs.append(rate(bare_asyncio, main, mode="wrap"))
            handler_runs.append(rate(handler, main, mode="wrap"))
            grouped_runs.append(rate(grouped, main, mode="wrap"))
            ingress_runs.append(rate(ingress, mains_i[r]))
            own = proc_info.cpu_seconds(writer.ingress_pid)
            writer_runs.append(rate(writer, mains_w[r]))
            writer_own.append(proc_info.cpu_seconds(writer.ingress_pid) - own)
            svc_runs.append(measured(ctx, svc, main, positions=positions[r]))
            # The worker catches up before the next round, off the clock.
            client.wait_caught_up(svc.grpc_target)
            if on is not None:
                traced_runs.append(measured(ctx, on[0], main))
                client.wait_caught_up(on[0].grpc_target)
        spans = "" if on is None else traced.spans_note(on[1])
        m = svc.metrics()
        svc.kill()  # no clean shutdown: every 2xx must be in the store anyway
    answered, found, rows = verify_stored(data_dir, positions)
    got, base, base_asyncio = best(svc_runs), best(bare_runs), best(asyncio_runs)
    ctx.shared["p1_rps"] = got.rps
    accepted = sum(r.accepted for r in svc_runs)
    bad = sum(r.non2xx + r.errors for r in svc_runs)
    dups = sum(r.duplicate for r in svc_runs)
    durable = found == answered == accepted and bad == 0
    exhausted = ran_out(svc_runs)
    batch, queued = (
        _mean(m, "loyalty_append_batch_size"),
        _mean(m, "loyalty_append_seconds"),
    )
    group = (
        f"Group commit over the run: {batch:.1f} webhooks per transaction, "
        f"{queued * 1000:.1f} ms from queued to committed (mean)"
        if batch is not None and queued is not None
        else "(no group-commit metrics found)"
    )
    each = ", ".join(f"{r.rps:,.0f}" for r in svc_runs)
    each_bare = ", ".join(f"{r.rps:,.0f}" for r in bare_runs)
    path = best(ingress_runs)
    path_bad = sum(r.non2xx + r.errors for r in ingress_runs)
    rows_out = [
        Row(
            "P1 ingest path (service ingress), 64 connections",
            path.rps,
            "req/s",
            base.rps,
            path.rps / base.rps,
            ">= 0.50x",
            path.rps / base.rps >= 0.5 and path_bad == 0,
            note="HTTP, signature, durable encrypted append, with the projections "
            "in a process of their own (as `run --split` and the PostgreSQL "
            "deployment run them): `python -m service ingress` on its own core; "
            f"rounds {', '.join(f'{r.rps:,.0f}' for r in ingress_runs)} req/s"
            f"{ran_out(ingress_runs)}, {path_bad} non-2xx or socket errors, "
            f"{unique:,} unique webhooks a round, "
            f"server CPU {path.cpu_share:.0%} of a core",
        ),
        *writer_rows(writer_runs, writer_own, base, ran_out(writer_runs)),
        Row(
            "P1 make run (one process), 64 connections",
            got.rps,
            "req/s",
            base.rps,
            got.rps / base.rps,
            note=f"best of {s.rounds} interleaved rounds of {s.load_seconds} s "
            f"(service {each}; bare {each_bare} req/s){exhausted}; bare = Sanic "
            "with uvloop, as `app.run` gives it. Server CPU in the best rounds: "
            f"service {got.cpu_share:.0%}, bare {base.cpu_share:.0%} of a core "
            f"(wrk: {base.gen_share:.0%} of its own). {group}",
        ),
        Row(
            "P1 vs bare Sanic on asyncio loop",
            got.rps,
            "req/s",
            base_asyncio.rps,
            got.rps / base_asyncio.rps,
            note="the service hosts Sanic on the stdlib asyncio loop; this baseline "
            "does too, so the ratio shows the gap without the event loop",
        ),
        Row("P1 latency p50", got.p50_ms, "ms", base.p50_ms, got.p50_ms / base.p50_ms),
        Row(
            "P1 latency p99",
            got.p99_ms,
            "ms",
            base.p99_ms,
            got.p99_ms / base.p99_ms,
            note=f"closed loop, 64 connections kept busy; max {got.max_ms:.1f} ms",
        ),
        Row(
            "P1 every 2xx stored",
            float(found),
            "events",
            float(answered),
            target="all, after SIGKILL",
            passed=durable,
            note=f"{answered:,} answered accepted in the measured rounds, {found:,} "
            f"of them found after kill -9; {rows:,} rows in stored_events (with "
            f"warm-up); {bad} non-2xx or socket errors, {dups} duplicates",
        ),
    ]
    rows_out += ladder(
        base,
        [
            ("bare Sanic on the asyncio loop", base_asyncio),
            ("+ the service's webhook handler", best(handler_runs)),
            (
                f"+ the group commit, to a store that waits {FAKE_COMMIT_MS:g} ms",
                best(grouped_runs),
            ),
            ("+ the append (group commit, no projections)", best(ingress_runs)),
            ("+ the projections (the service)", got),
        ],
    )
    if traced_runs:
        on_best = best(traced_runs)
        rows_out.append(
            Row(
                "P1 with tracing on",
                on_best.rps,
                "req/s",
                got.rps,
                on_best.rps / got.rps,
                note="baseline: the service with tracing off, same rounds; on: "
                "OTLP/HTTP to a receiver, default sampler and batch processor "
                f"(rounds {', '.join(f'{r.rps:,.0f}' for r in traced_runs)} req/s; "
                f"p99 {on_best.p99_ms:.1f} ms vs {got.p99_ms:.1f} ms off); {spans}",
            )
        )
    if ctx.split:
        from bench import split

        rows_out += split.p1(ctx)
    if ctx.profile:
        profile(ctx)
    return rows_out


def ladder(base: WrkResult, steps: list[tuple[str, WrkResult]]) -> list[Row]:
    """Each step's rate, its cost per event, and what it adds to the step
    before, in the same run as the bare baseline (all best of the rounds)."""
    rows, before = [], 1e6 / base.rps
    for name, r in steps:
        us = 1e6 / r.rps
        rows.append(
            Row(
                f"P1 ladder: {name}",
                r.rps,
                "req/s",
                base.rps,
                r.rps / base.rps,
                note=f"{us:.0f} us an event ({us - before:+.0f} us on the step "
                f"before; bare Sanic with uvloop {1e6 / base.rps:.0f} us); server "
                f"CPU {r.cpu_share:.0%} of its core",
            )
        )
        before = us
    return rows


def profile(ctx: Context) -> None:
    """An unmeasured pass with py-spy attached, on a fresh store."""
    s = ctx.sizes
    warm, (main,) = request_files(ctx, "p1prof", 1)
    data_dir = ctx.dir("p1/profile-store")
    with procs.start_service(
        data_dir, ctx.server_core, ctx.out / "logs", "p1-profile"
    ) as svc:
        send_all(ctx, svc.http_url, warm)
        client.wait_caught_up(svc.grpc_target)
        load = threading.Thread(
            target=run_wrk,
            args=(ctx, svc.http_url, main),
            kwargs={"seconds": s.profile_seconds + 2},
        )
        load.start()
        rec = profiling.record(
            ctx.tools["py-spy"],
            svc.pid,
            s.profile_seconds,
            ctx.out / "profile-p1.txt",
            ctx.gen_core,
        )
        load.join()
    ctx.shared.setdefault("profiles", []).append(
        profiling.summarize(rec, "P1 ingest (service under wrk, 64 connections)")
    )
