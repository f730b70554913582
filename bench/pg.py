"""PostgreSQL mode (`python -m bench --pg`): the production figures.

P1: `python -m service ingress --workers 2` (two processes sharing the port
with SO_REUSEPORT), one `worker` and one `api`, under wrk replaying unique
signed webhooks; afterwards the ingress is killed (SIGKILL) and every
position a 2xx named must be in the schema's stored_events. P3: the events
of SQLite P3, appended through EventStore.append, then a full rebuild into
PostgreSQL read models, timed in a child process, against reading them.

Every run uses a fresh schema, dropped at the end. Only wrk (and this
process) stay pinned to the generator core: with two cores, PostgreSQL, the
ingress processes and the worker have to share both.

    python -m bench.pg measure URL   # P3's timed part; prints one JSON line
    python -m bench.pg rebuild URL   # (what the P3 profile samples)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from bench import client, data, p1_ingest, p3_rebuild, procs, profiling
from bench.context import Context
from bench.p1_ingest import WrkResult
from bench.report import Row
from bench.tools import pinned
from testkit import procs as proc_info
from testkit import traffic

if TYPE_CHECKING:
    import psycopg

    from service.masterkey import MasterKey

FALLBACK_URL = "postgresql://postgres@127.0.0.1:5432/test"


def default_url() -> str:
    """$BENCH_DATABASE_URL, read when asked (not at import), else the local test
    database."""
    return os.environ.get("BENCH_DATABASE_URL", FALLBACK_URL)


INGRESS = 2
WIDE = 256  # connections of the extra, informational round
P1_TARGET, P3_TARGET = 10_000, 30_000
CPU_TARGET_US = 400  # CPU per stored and projected event, all processes


def shown(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def unreachable(url: str) -> str | None:
    """Why PostgreSQL at `url` cannot be used, or None if it can."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return None


def _admin(url: str) -> psycopg.Connection[Any]:
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=5)


@contextlib.contextmanager
def fresh_schema(base: str, tag: str) -> Iterator[str]:
    """A `?schema=` URL for a new, unique schema; dropped afterwards, so runs
    never see each other's data."""
    schema = f"bench_{tag}_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(base)
    query = "&".join(x for x in (parts.query, urlencode({"schema": schema})) if x)
    try:
        yield urlunsplit(parts._replace(query=query))
    finally:
        with _admin(base) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def stored_positions(url: str) -> set[int]:
    from service.backends.postgres.store import conninfo, library_env

    env = library_env(url)
    with _admin(conninfo(env)) as conn:
        table = f'"{env["POSTGRES_SCHEMA"]}".stored_events'
        return {r[0] for r in conn.execute(f"SELECT notification_id FROM {table}")}


def postgres_cpu() -> float:
    """CPU seconds of PostgreSQL (other users' work too): its live processes,
    plus the exited backends the postmaster has reaped (its children's time),
    so a connection closing mid-run does not lose its CPU."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _, rest = stat.read_text().rpartition(")")
        except OSError:
            continue
        if head.endswith("(postgres"):
            total += sum(int(x) for x in rest.split()[11:15])
    return total / os.sysconf("SC_CLK_TCK")


# P1 --------------------------------------------------------------------------


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
    r = p1_ingest.run_wrk(ctx, url, requests, seconds=ctx.sizes.load_seconds, **kw)
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
    # One file per round, and one for a round with WIDE connections.
    warm, mains = p1_ingest.request_files(ctx, "pg1", s.rounds + 1)
    positions = [ctx.dir("pg1") / f"accepted-{r}.txt" for r in range(s.rounds + 1)]
    svc: list[Round] = []
    bare: list[Round] = []
    with fresh_schema(ctx.pg_url, "p1") as url:
        with (
            procs.start_bare_sanic(None, logs, "uvloop") as sanic,
            procs.start_pg_role("ingress", url, logs, "pg-ingress", INGRESS) as ing,
            procs.start_pg_role("worker", url, logs, "pg-worker") as worker,
            procs.start_pg_role("api", url, logs, "pg-api") as api,
        ):
            deployment = {"ingress": ing, "worker": worker, "api": api}
            p1_ingest.run_wrk(
                ctx, sanic.http_url, mains[0], seconds=s.warmup_seconds, mode="wrap"
            )
            p1_ingest.send_all(ctx, ing.http_url, warm)
            client.wait_caught_up(api.grpc_target)
            for r, main in enumerate(mains[:-1]):  # interleaved; the best counts
                bare.append(
                    _measure(ctx, sanic.http_url, {"bare": sanic}, main, mode="wrap")
                )
                at = positions[r]
                svc.append(
                    _measure(
                        ctx,
                        ing.http_url,
                        deployment,
                        main,
                        settle=lambda: client.wait_caught_up(api.grpc_target),
                        positions=at,
                    )
                )
                client.wait_caught_up(api.grpc_target)  # off the clock
            # With 64 connections the rate is at most 64 / latency; more in
            # flight shows what the processes do when commits are not waited on.
            wide = _measure(
                ctx,
                ing.http_url,
                deployment,
                mains[-1],
                positions=positions[-1],
                connections=WIDE,
            )
            metrics = ing.metrics()
            if ctx.profile:
                _profile_p1(ctx, ing, api)
            metrics_dir = _metrics_dir(ing)
            ing.kill()  # the supervisor and both children: no clean shutdown
            if metrics_dir is not None:  # the supervisor leaves it behind
                shutil.rmtree(metrics_dir, ignore_errors=True)
        answered = [int(x) for p in positions for x in p.read_text().split()]
        stored = stored_positions(url)
    return _p1_rows(ctx, svc, bare, wide, answered, stored, metrics)


def _p1_rows(
    ctx: Context,
    svc: list[Round],
    bare: list[Round],
    wide: Round,
    answered: list[int],
    stored: set[int],
    metrics: dict[str, float],
) -> list[Row]:
    s = ctx.sizes
    got, base = _best(svc), _best(bare)
    w = got.wrk
    unique = set(answered)
    found = len(unique & stored) if len(unique) == len(answered) else -1
    accepted = sum(r.wrk.accepted for r in svc) + wide.wrk.accepted
    bad = sum(r.wrk.non2xx + r.wrk.errors for r in [*svc, wide])
    count = metrics.get("loyalty_append_batch_size_count")
    batch = (
        f"Group commit: {metrics['loyalty_append_batch_size_sum'] / count:.1f} "
        "webhooks per transaction (mean over the run, both ingress processes)"
        if count
        else "(no group-commit metrics found)"
    )

    def cpu(r: Round) -> str:
        per = r.cores["ingress"] / r.wrk.rps * 1e6
        return (
            ", ".join(f"{n} {c:.2f}" for n, c in r.cores.items())
            + f"; ingress {per:.0f} us of CPU a request"
        )

    name = f"P1 ingest on PostgreSQL, {INGRESS} ingress processes"
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
            "PostgreSQL's processes (from /proc; other users' queries count too) "
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
            f"(with the {WIDE}-connection one), {found:,} of them in stored_events "
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


def _profile_p1(ctx: Context, ing: procs.Server, api: procs.Server) -> None:
    """Unmeasured: py-spy on one ingress process under wrk, fresh webhooks."""
    s = ctx.sizes
    client.wait_caught_up(api.grpc_target)
    path = ctx.dir("pg1") / "profile.txt"
    offset = s.p1_customers + (s.rounds + 1) * s.p1_requests  # unseen ids
    data.write_requests(
        path, traffic.webhooks(s.p1_requests, s.p1_customers, tag="pg1", offset=offset)
    )
    load = threading.Thread(
        target=p1_ingest.run_wrk,
        args=(ctx, ing.http_url, path),
        kwargs={"seconds": s.profile_seconds + 2},
    )
    load.start()
    rec = profiling.record(
        ctx.tools["py-spy"],
        proc_info.spawned_children(ing.pid)[0],
        s.profile_seconds,
        ctx.out / "profile-pg-p1.txt",
        ctx.gen_core,
    )
    load.join()
    title = f"P1 on PostgreSQL (one of {INGRESS} ingress processes, under wrk)"
    ctx.shared.setdefault("profiles", []).append(profiling.summarize(rec, title))


# P3 --------------------------------------------------------------------------


def master_key_file() -> Path:
    """The bench's master key for PostgreSQL (required there); each run's
    fresh schema records whichever key first opens it."""
    from service.masterkey import write_new_master_key

    path = Path(__file__).with_name("out") / "pg-master.key"
    if not path.exists():
        write_new_master_key(path)
    return path


def master_key() -> MasterKey:
    from service.masterkey import read_master_key

    return read_master_key(master_key_file())


def read_all(url: str) -> tuple[int, float]:
    from service.backends.postgres.store import open_postgres

    store, _, factory = open_postgres(url, master_key())
    try:
        return p3_rebuild.time_read(store)
    finally:
        factory.close()


def rebuild_all(url: str) -> tuple[int, float]:
    from projections.stores.postgres import open_postgres_read_models
    from service.backends.postgres.store import open_postgres

    store, _, factory = open_postgres(url, master_key())
    from service.rpc.answers import ANSWERS

    models = open_postgres_read_models(url, ANSWERS)  # answers stored too
    try:
        return p3_rebuild.time_rebuild(store, models)
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


BENCHMARKS: dict[str, Callable[[Context], list[Row]]] = {"P1": run_p1, "P3": run_p3}
TITLES = {"P1": "P1 ingest on PostgreSQL", "P3": "P3 rebuild on PostgreSQL"}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pg")
    parser.add_argument("what", choices=("measure", "rebuild"))
    parser.add_argument("url")
    args = parser.parse_args()
    if args.what == "rebuild":
        rebuild_all(args.url)
        return
    read_n, read_s = read_all(args.url)
    built_n, built_s = rebuild_all(args.url)
    read_s = min(read_s, read_all(args.url)[1])  # noise only slows a run down
    print(
        json.dumps(
            {"read": read_n, "read_s": read_s, "rebuilt": built_n, "rebuild_s": built_s}
        )
    )


if __name__ == "__main__":
    main()
