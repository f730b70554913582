"""What the worker's linger buys and costs on PostgreSQL, in one run:

    python -m bench.pg_linger [--linger 20] [--rounds 3] [--seconds 10]
        [--pg-url URL] [--smoke]

Two copies of P1's PostgreSQL deployment (one ingress process, a worker,
an API), each in a fresh schema: one with `PROJECTION_LINGER_MS=0`, one
with `--linger` (default: the backend's). Each gets the same warm-up, then
P1's load (wrk, 64 connections, never-seen webhooks) in interleaved rounds;
a round's CPU per accepted event is split by process, with the PostgreSQL
backends serving each process's connections apart (by client port) and
the server's other processes (WAL writer, autovacuum) as "other". Last,
P4's freshness against each at half the slower copy's best rate.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import tempfile
from pathlib import Path

from bench import client, p1_files, p4_freshness, procs, wrk
from bench.__main__ import tools_for
from bench.context import FULL, SMOKE, Context
from bench.pgdb import backends_cpu, default_url, fresh_schema, postgres_cpu
from bench.tools import cores
from service.backends.postgres.backend import PostgresBackend

ROLES = ("ingress", "worker", "api")


def deployment(
    stack: contextlib.ExitStack, ctx: Context, tag: str, linger_ms: int
) -> dict[str, procs.Server]:
    url = stack.enter_context(fresh_schema(ctx.pg_url, f"linger{tag}"))
    logs = ctx.out / "logs"
    env = {"PROJECTION_LINGER_MS": str(linger_ms)}
    return {
        role: stack.enter_context(
            procs.start_pg_role(role, url, logs, f"{role}-{tag}", extra_env=env)
        )
        for role in ROLES
    }


def measure(
    ctx: Context, d: dict[str, procs.Server], requests: Path
) -> dict[str, float]:
    """One round: us of CPU per accepted event, by part, and req/s."""

    def pids(s: procs.Server) -> list[int]:
        return [s.pid, *s.descendants()]

    def sample() -> dict[str, float]:
        got = {r: s.tree_cpu_seconds() for r, s in d.items()}
        got |= {f"pg {r}": backends_cpu(pids(s)) for r, s in d.items()}
        got["pg all"] = postgres_cpu()
        return got

    before = sample()
    r = wrk.run_wrk(
        ctx, d["ingress"].http_url, requests, seconds=ctx.sizes.load_seconds
    )
    client.wait_caught_up(d["api"].grpc_target)  # projected, on the clock
    after = sample()
    us = {k: (after[k] - before[k]) / max(r.accepted, 1) * 1e6 for k in before}
    us["pg other"] = us.pop("pg all") - sum(us[f"pg {r}"] for r in ROLES)
    us["total"] = sum(us.values())
    us["req/s"] = r.rps
    return us


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.pg_linger")
    ap.add_argument(
        "--linger", type=int, default=int(PostgresBackend.worker_linger * 1000)
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--pg-url", default=default_url())
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    sizes = dataclasses.replace(
        SMOKE if args.smoke else FULL, load_seconds=args.seconds
    )
    gen, srv = cores()
    with tempfile.TemporaryDirectory(prefix="loyalty-linger-") as tmp:
        work = Path(tmp)
        ctx = Context(
            sizes=sizes, smoke=args.smoke, work=work, out=work / "out",
            gen_core=gen, server_core=srv, profile=False,
            tools=tools_for(["P1"], False), pg_url=args.pg_url,
        )  # fmt: skip
        (ctx.out / "logs").mkdir(parents=True)
        shapes = {"0": 0, str(args.linger): args.linger}
        warm, files = p1_files.request_files(ctx, "linger", 2 * args.rounds)
        rounds: dict[str, list[dict[str, float]]] = {k: [] for k in shapes}
        with contextlib.ExitStack() as stack:
            ds = {k: deployment(stack, ctx, k, ms) for k, ms in shapes.items()}
            for d in ds.values():
                wrk.send_all(ctx, d["ingress"].http_url, warm)
                client.wait_caught_up(d["api"].grpc_target)
            for r in range(args.rounds):
                for i, (k, d) in enumerate(ds.items()):
                    got = measure(ctx, d, files[2 * r + i])
                    rounds[k].append(got)
                    print(
                        f"round {r + 1}, linger {k} ms: {got['req/s']:,.0f} req/s, "
                        f"{got['total']:.0f} us an event",
                        flush=True,
                    )
            rate = min(max(x["req/s"] for x in rs) for rs in rounds.values()) / 2
            fresh = {
                k: p4_freshness.probe_at(
                    ctx,
                    d["ingress"].http_url,
                    d["api"].grpc_target,
                    rate,
                    p4_freshness.requests(ctx, rate, work / f"p4-{k}.txt", f"p4l{k}"),
                )
                for k, d in ds.items()
            }
    parts = [*ROLES, *(f"pg {r}" for r in ROLES), "pg other", "total"]
    print(f"\nCPU us an event by part, each round (linger 0 ms / {args.linger} ms)")
    print("| part | " + " | ".join(f"{k} ms" for k in shapes) + " |")
    print("|---|" + "---|" * len(shapes))
    for part in [*parts, "req/s"]:
        cells = [
            ", ".join(
                f"{x[part]:,.0f}" if part == "req/s" else f"{x[part]:.1f}" for x in rs
            )
            for rs in rounds.values()
        ]
        print(f"| {part} | " + " | ".join(cells) + " |")
    print(f"\nP4 freshness at {rate:,.0f} webhooks/s asked (half the slower best rate)")
    for k, f in fresh.items():
        print(
            f"linger {k} ms: p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms, "
            f"max {f['max_ms']:.1f} ms, {f['probes']} probes, {f['errors']} errors"
        )


if __name__ == "__main__":
    main()
