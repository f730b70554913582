"""P1 on PostgreSQL: `python -m service ingress --workers N` (N processes
sharing the port with SO_REUSEPORT; one without a supervisor when N is 1),
one `worker` and one `api`, under wrk replaying unique signed webhooks;
afterwards the ingress is killed (SIGKILL) and every position a 2xx named
must be in the schema's stored_events.

N is half the machine's cores (one on two): PostgreSQL and the worker need
the rest. The same deployment with one ingress process more runs in the
same interleaved rounds, on the same schema, as an informational row: on
two cores its second process made fewer webhooks a second for more CPU an
event (smaller group commits, five busy processes on two cores).

Only wrk (and this process) stay pinned to the generator core: with two
cores, PostgreSQL, the ingress processes and the worker have to share both.

Then P4's freshness on the same deployment, at half the best round's rate:
the worker lingers under load by default on PostgreSQL (a wake-up's round
trips cost the same whatever its size), and this row shows what that costs
a `min_position` read.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import client, data, p1_files, p4_freshness, procs, profiling, wrk
from bench.context import Context
from bench.report import Row
from bench.wrk import WrkResult
from service.backends.postgres.backend import PostgresBackend
from service.bootstrap import worker_linger
from service.config import Settings
from testkit import procs as proc_info
from testkit import traffic

if TYPE_CHECKING:
    pass
from bench.pgdb import fresh_schema, postgres_cpu, stored_positions

INGRESS = max(1, (os.cpu_count() or 2) // 2)  # the target's shape
MORE = INGRESS + 1  # measured beside it, in the same rounds
WIDE = 256  # connections of the extra, informational round
P1_TARGET = 10_000
CPU_TARGET_US = 400  # CPU per stored and projected event, all processes


@dataclass
class Round:
    wrk: WrkResult
    cores: dict[str, float]  # CPU used over the run, in cores, by process
    # CPU of every process (PostgreSQL too) from the round's start until the
    # worker has projected all it stored, per event accepted: what one
    # stored and projected event costs the deployment.
    us_per_event: float = 0.0


def _measure(
    ctx: Context,
    url: str,
    servers: dict[str, procs.Server],
    requests: Path,
    settle: Callable[[], None] | None = None,
    **kw: Any,
) -> Round:
    before = {n: x.tree_cpu_seconds() for n, x in servers.items()}
    pg0 = postgres_cpu()
    r = wrk.run_wrk(ctx, url, requests, seconds=ctx.sizes.load_seconds, **kw)
    after = {n: x.tree_cpu_seconds() for n, x in servers.items()}
    pg1 = postgres_cpu()
    cores = {n: (after[n] - before[n]) / r.seconds for n in servers}
    cores["PostgreSQL"] = (pg1 - pg0) / r.seconds
    cores["wrk"] = r.gen_share
    us = 0.0
    if settle is not None and r.accepted:
        settle()  # the worker projects the rest of the round's events
        spent = sum(x.tree_cpu_seconds() - before[n] for n, x in servers.items())
        us = (spent + postgres_cpu() - pg0) / r.accepted * 1e6
    return Round(r, cores, us)


def _best(rounds: list[Round]) -> Round:
    return max(rounds, key=lambda x: x.wrk.rps)


def run_p1(ctx: Context) -> list[Row]:
    s, logs = ctx.sizes, ctx.out / "logs"
    # A file per round of each shape, and one for a round with WIDE connections.
    warm, files = p1_files.request_files(ctx, "pg1", 2 * s.rounds + 1)
    mains, more_mains = files[: s.rounds + 1], files[s.rounds + 1 :]
    positions = [ctx.dir("pg1") / f"accepted-{r}.txt" for r in range(len(files))]
    svc: list[Round] = []
    more: list[Round] = []
    bare: list[Round] = []
    with fresh_schema(ctx.pg_url, "p1") as url:
        with (
            procs.start_bare_sanic(None, logs, "uvloop") as sanic,
            procs.start_pg_role("ingress", url, logs, "pg-ingress", INGRESS) as ing,
            procs.start_pg_role("ingress", url, logs, "pg-ingress-more", MORE) as ing2,
            procs.start_pg_role("worker", url, logs, "pg-worker") as worker,
            procs.start_pg_role("api", url, logs, "pg-api") as api,
        ):
            deployment = {"ingress": ing, "worker": worker, "api": api}
            wider = {"ingress": ing2, "worker": worker, "api": api}

            def settle() -> None:
                client.wait_caught_up(api.grpc_target)

            wrk.run_wrk(
                ctx, sanic.http_url, mains[0], seconds=s.warmup_seconds, mode="wrap"
            )
            wrk.send_all(ctx, ing.http_url, warm)
            settle()
            for r in range(s.rounds):  # interleaved; the best of each counts
                bare.append(
                    _measure(
                        ctx, sanic.http_url, {"bare": sanic}, mains[r], mode="wrap"
                    )
                )
                svc.append(
                    _measure(
                        ctx,
                        ing.http_url,
                        deployment,
                        mains[r],
                        settle=settle,
                        positions=positions[r],
                    )
                )
                settle()  # off the clock
                more.append(
                    _measure(
                        ctx,
                        ing2.http_url,
                        wider,
                        more_mains[r],
                        settle=settle,
                        positions=positions[s.rounds + 1 + r],
                    )
                )
                settle()
            # With 64 connections the rate is at most 64 / latency; more in
            # flight shows what the processes do when commits are not waited on.
            wide = _measure(
                ctx,
                ing.http_url,
                deployment,
                mains[-1],
                positions=positions[s.rounds],
                connections=WIDE,
            )
            metrics = ing.metrics()
            # Freshness at half the best rate, the worker lingering as
            # deployed (PROJECTION_LINGER_MS's default on PostgreSQL).
            rate = _best(svc).wrk.rps / 2
            p4 = p4_freshness.probe_at(
                ctx,
                ing.http_url,
                api.grpc_target,
                rate,
                p4_freshness.requests(ctx, rate, ctx.dir("pg4") / "r.txt", "pg4"),
            )
            settle()
            if ctx.profile:
                _profile_p1(ctx, ing, api, 2 * s.rounds + 1)
            dirs = [d for d in (_metrics_dir(ing), _metrics_dir(ing2)) if d]
            ing.kill()  # the supervisors and their children: no clean shutdown
            ing2.kill()
            for d in dirs:  # a supervisor leaves its directory behind
                shutil.rmtree(d, ignore_errors=True)
        answered = [int(x) for p in positions for x in p.read_text().split()]
        stored = stored_positions(url)
    rows = _p1_rows(ctx, svc, bare, [*more, wide], answered, stored, metrics)
    # What the worker ran with, resolved as it resolves it: the bench's
    # environment passes through to the roles.
    settings = Settings.from_environ(require_secret=False)
    linger_ms = worker_linger(settings, PostgresBackend(url)) * 1000
    fresh = p4_freshness.freshness_row(
        "P4 freshness p99 on PostgreSQL",
        p4,
        rate,
        f"; `ingress --workers {INGRESS}`, `worker` (lingering under load: "
        f"{linger_ms:.0f} ms), `api`",
    )
    return [*rows, _more_row(more, svc, bare), fresh]


def _more_row(more: list[Round], svc: list[Round], bare: list[Round]) -> Row:
    got, base, ours = _best(more), _best(bare), _best(svc)
    per = got.cores["ingress"] / got.wrk.rps * 1e6
    return Row(
        f"P1 on PostgreSQL, {MORE} ingress processes",
        got.wrk.rps,
        "req/s",
        ours.wrk.rps,
        got.wrk.rps / ours.wrk.rps,
        note=f"the same deployment with one ingress process more, in the same "
        f"rounds on the same schema; baseline: {INGRESS} (the row above). "
        f"Rounds {', '.join(f'{r.wrk.rps:,.0f}' for r in more)} req/s; CPU per "
        f"stored and projected event {got.us_per_event:.0f} us (rounds "
        + ", ".join(f"{r.us_per_event:.0f}" for r in more)
        + f") against {ours.us_per_event:.0f}; ingress {per:.0f} us of CPU a "
        f"request; bare Sanic {base.wrk.rps:,.0f} req/s",
    )


def _p1_rows(
    ctx: Context,
    svc: list[Round],
    bare: list[Round],
    others: list[Round],
    answered: list[int],
    stored: set[int],
    metrics: dict[str, float],
) -> list[Row]:
    """The target's rows; `others` are the rounds that also stored events
    (the other shape's, then the WIDE one)."""
    s = ctx.sizes
    got, base = _best(svc), _best(bare)
    w = got.wrk
    unique = set(answered)
    found = len(unique & stored) if len(unique) == len(answered) else -1
    wide = others[-1]
    accepted = sum(r.wrk.accepted for r in [*svc, *others])
    bad = sum(r.wrk.non2xx + r.wrk.errors for r in [*svc, *others])
    count = metrics.get("loyalty_append_batch_size_count")
    batch = (
        f"Group commit: {metrics['loyalty_append_batch_size_sum'] / count:.1f} "
        f"webhooks per transaction (mean over the run, {INGRESS} ingress process(es))"
        if count
        else "(no group-commit metrics found)"
    )

    def cpu(r: Round) -> str:
        per = r.cores["ingress"] / r.wrk.rps * 1e6
        return (
            ", ".join(f"{n} {c:.2f}" for n, c in r.cores.items())
            + f"; ingress {per:.0f} us of CPU a request"
        )

    name = f"P1 ingest on PostgreSQL, {INGRESS} ingress process(es)"
    return [
        Row(
            name,
            w.rps,
            "req/s",
            base.wrk.rps,
            w.rps / base.wrk.rps,
            f">= {P1_TARGET:,} events/s",
            w.rps >= P1_TARGET,
            note=f"best of {s.rounds} rounds of {s.load_seconds} s (service "
            + ", ".join(f"{r.wrk.rps:,.0f}" for r in svc)
            + "; bare "
            + ", ".join(f"{r.wrk.rps:,.0f}" for r in bare)
            + " req/s)"
            + (" (ran out of unique events early)" if w.exhausted else "")
            + f"; each request a new event. `ingress --workers {INGRESS}`, one "
            "`worker`, one `api`, PostgreSQL 15, all unpinned on both cores; wrk "
            "(1 thread, 64 connections) pinned to core "
            f"{ctx.gen_core}. Baseline: one bare Sanic process (uvloop), also "
            f"unpinned, for context only. CPU in cores over the best round: {cpu(got)} "
            f"(bare Sanic: {base.cores['bare']:.2f}). {batch}",
        ),
        Row(
            "PostgreSQL CPU per stored and projected event",
            got.us_per_event,
            "us",
            target=f"<= {CPU_TARGET_US} us",
            passed=got.us_per_event <= CPU_TARGET_US,
            note="CPU of the ingress processes, the worker, the API and all of "
            "PostgreSQL's processes (psutil; other users' queries count too) "
            "from the start of the best round until the worker had projected "
            "every event the round stored, divided by the events accepted; "
            "rounds: " + ", ".join(f"{r.us_per_event:.0f}" for r in svc) + " us",
        ),
        Row("P1 on PostgreSQL latency p50", w.p50_ms, "ms", base.wrk.p50_ms),
        Row(
            "P1 on PostgreSQL latency p99",
            w.p99_ms,
            "ms",
            base.wrk.p99_ms,
            note=f"closed loop, 64 connections kept busy; max {w.max_ms:.1f} ms",
        ),
        Row(
            "P1 on PostgreSQL, every 2xx stored",
            float(found),
            "events",
            float(len(answered)),
            target="all, after SIGKILL",
            passed=found == len(answered) == accepted and bad == 0,
            note=f"{len(answered):,} answered accepted in the measured rounds "
            f"(with the {MORE}-process ones and the {WIDE}-connection one), "
            f"{found:,} of them in stored_events "
            "after kill -9 of the ingress; "
            f"{len(stored):,} rows with the warm-up"
            + (" and the profile pass" if ctx.profile else "")
            + f"; {bad} non-2xx or socket errors",
        ),
        Row(
            f"P1 on PostgreSQL, {WIDE} connections",
            wide.wrk.rps,
            "req/s",
            note=f"one round, after the others: with 64 connections the rate is "
            f"at most 64 / latency. p50 {wide.wrk.p50_ms:.1f} ms, p99 "
            f"{wide.wrk.p99_ms:.1f} ms; CPU in cores: {cpu(wide)}",
        ),
    ]


def _metrics_dir(server: procs.Server) -> Path | None:
    """The PROMETHEUS_MULTIPROC_DIR `ingress --workers` made for its children."""
    for pid in proc_info.spawned_children(server.pid):
        with contextlib.suppress(OSError):
            value = proc_info.environ_value(pid, "PROMETHEUS_MULTIPROC_DIR")
            if value is not None:
                return Path(value)
    return None


def _profile_p1(ctx: Context, ing: procs.Server, api: procs.Server, files: int) -> None:
    """Unmeasured: py-spy on one ingress process under wrk, fresh webhooks
    (past the `files` request files the rounds used)."""
    s = ctx.sizes
    client.wait_caught_up(api.grpc_target)
    path = ctx.dir("pg1") / "profile.txt"
    offset = s.p1_customers + files * s.p1_requests  # unseen ids
    data.write_requests(
        path, traffic.webhooks(s.p1_requests, s.p1_customers, tag="pg1", offset=offset)
    )
    load = threading.Thread(
        target=wrk.run_wrk,
        args=(ctx, ing.http_url, path),
        kwargs={"seconds": s.profile_seconds + 2},
    )
    load.start()
    rec = profiling.record(
        ctx.tools["py-spy"],
        (proc_info.spawned_children(ing.pid) or [ing.pid])[0],
        s.profile_seconds,
        ctx.out / "profile-pg-p1.txt",
        ctx.gen_core,
    )
    load.join()
    title = f"P1 on PostgreSQL (an ingress process of {INGRESS}, under wrk)"
    ctx.shared.setdefault("profiles", []).append(profiling.summarize(rec, title))


# P3 --------------------------------------------------------------------------
