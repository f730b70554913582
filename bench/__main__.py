"""`python -m bench [--smoke] [--pg]`: build the data, run P1-P6 (with --pg:
P1 and P3 on PostgreSQL), print the table.

The load generators (and this process) run on one core, every server under
test on the other (with --pg, on both). Stores and request files live in a
temporary directory; logs, py-spy profiles and the results (results.md and
results.json; results-pg.* with --pg) in --out.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import (
    p1_ingest,
    p2_reads,
    p3_rebuild,
    p4_freshness,
    p5_memory,
    p6_replay,
    pg,
    report,
)
from bench.context import FULL, SMOKE, Context
from bench.tools import ToolMissing, cores, ensure_binary, ensure_py_spy, pin_self

# Run order: P4 needs P1's rate; P2 reads the store P3 built (P6 replays it
# when P3 ran, and builds one of its size otherwise).
BENCHMARKS: dict[str, Callable[[Context], list[report.Row]]] = {
    "P1": p1_ingest.run,
    "P4": p4_freshness.run,
    "P3": p3_rebuild.run,
    "P2": p2_reads.run,
    "P6": p6_replay.run,
    "P5": p5_memory.run,
}
NEEDS = {"P4": "P1", "P2": "P3"}
TITLES = {
    "P1": "P1 ingest",
    "P2": "P2 reads",
    "P3": "P3 rebuild",
    "P4": "P4 freshness",
    "P5": "P5 memory",
    "P6": "P6 replay",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    p.add_argument(
        "--only",
        default=None,
        help="comma-separated, e.g. P1,P3 (default: all; with --pg: P1,P3)",
    )
    p.add_argument(
        "--pg",
        action="store_true",
        help="P1 (2 ingress processes) and P3 on PostgreSQL instead of SQLite",
    )
    p.add_argument(
        "--pg-url",
        default=pg.default_url(),
        help="the PostgreSQL database for --pg (default: $BENCH_DATABASE_URL or "
        "%(default)s); each run works in a fresh schema, dropped at the end",
    )
    p.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="py-spy profiles of P1, P2, P3 (default: on, off with --smoke)",
    )
    p.add_argument(
        "--out", type=Path, default=Path(__file__).with_name("out"), help="results"
    )
    p.add_argument(
        "--tracing",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="P1 and P2 also run the service with OpenTelemetry tracing on "
        "(OTLP/HTTP, default sampler) beside it off (default: on)",
    )
    p.add_argument(
        "--split",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="P1 and P4 also measure `run --split` beside `run`, same run: "
        "throughput, CPU per event of all processes, freshness (bench/split.py; "
        "default: on)",
    )
    p.add_argument("--keep", action="store_true", help="keep the generated data")
    p.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed"
    )
    return p.parse_args(argv)


def selected(only: str | None, on_pg: bool = False) -> list[str]:
    known = pg.BENCHMARKS if on_pg else BENCHMARKS
    wanted = {x.strip().upper() for x in (only or ",".join(known)).split(",")}
    wanted.discard("")
    unknown = wanted - set(known)
    if unknown:
        where = " on PostgreSQL (--pg runs P1 and P3)" if on_pg else ""
        raise SystemExit(f"unknown benchmark(s){where}: {', '.join(sorted(unknown))}")
    if not on_pg:
        wanted |= {NEEDS[x] for x in wanted if x in NEEDS}
    return [name for name in known if name in wanted]


def tools_for(names: list[str], profile: bool) -> dict[str, str]:
    tools = {}
    if {"P1", "P4"} & set(names):
        tools["wrk"] = ensure_binary("wrk")
    if "P2" in names:
        tools["h2load"] = ensure_binary("h2load")
    if profile:
        tools["py-spy"] = ensure_py_spy()
    return tools


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = selected(args.only, args.pg)
    profile = (not args.smoke) if args.profile is None else args.profile
    if args.pg and (why := pg.unreachable(args.pg_url)):
        print(
            f"bench: PostgreSQL is not reachable at {pg.shown(args.pg_url)}: {why}\n"
            "  start it (e.g. `pg_ctlcluster --skip-systemctl-redirect 15 main "
            "start`) or point --pg-url / BENCH_DATABASE_URL at one",
            file=sys.stderr,
        )
        return 2
    benchmarks, titles = (pg.BENCHMARKS, pg.TITLES) if args.pg else (BENCHMARKS, TITLES)
    gen_core, server_core = cores()
    pin_self(gen_core)
    try:
        tools = tools_for(names, profile)
    except ToolMissing as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="loyalty-bench-"))
    ctx = Context(
        sizes=SMOKE if args.smoke else FULL,
        smoke=args.smoke,
        work=work,
        out=args.out,
        gen_core=gen_core,
        server_core=server_core,
        profile=profile,
        tools=tools,
        pg_url=args.pg_url if args.pg else "",
        tracing=args.tracing,
        split=args.split,
    )
    mode = ("smoke" if args.smoke else "full") + (" pg" if args.pg else "")
    servers = (
        f"servers unpinned, on {pg.shown(args.pg_url)}"
        if args.pg
        else f"servers on core {server_core}"
    )
    print(
        f"bench ({mode}): load generators on core {gen_core}, {servers}; data in "
        f"{work}",
        flush=True,
    )
    rows: list[report.Row] = []
    crashed = False
    started = time.monotonic()
    try:
        for name in names:
            print(f"== {titles[name]}", flush=True)
            t0 = time.monotonic()
            try:
                rows += benchmarks[name](ctx)
            except Exception as e:  # one broken benchmark must not hide the rest
                crashed = True
                traceback.print_exc()
                rows.append(
                    report.Row(titles[name], None, "", passed=False, note=str(e))
                )
            print(f"   ({time.monotonic() - t0:.0f} s)", flush=True)
            if name == "P2" and profile and "p3_store" in ctx.shared:
                p3_rebuild.profile(ctx)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - started
    text = "\n\n".join(
        part
        for part in (
            report.table(rows),
            report.notes(rows),
            "\n".join(ctx.shared.get("profiles", [])),
        )
        if part
    )
    print("\n" + text)
    stem = "results-pg" if args.pg else "results"  # a --pg run keeps the SQLite one
    (args.out / f"{stem}.md").write_text(text + "\n")
    report.write_json(
        args.out / f"{stem}.json",
        rows,
        {
            "mode": mode,
            "seconds": round(elapsed),
            "python": platform.python_version(),
            "cores": [gen_core, server_core],
        },
    )
    print(f"\n{mode} run took {elapsed:.0f} s; results in {args.out}/{stem}.md")
    missed = any(r.passed is False for r in rows)
    return 1 if crashed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
