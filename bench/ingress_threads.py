"""Where `service ingress`'s CPU goes by thread, under P1's load.

    python -m bench.ingress_threads [--role ingress|run|writer] [--seconds 8]
        [--rounds 2] [--pg] [--pg-url URL]

The process under test runs pinned to one core, as in P1, on a fresh
SQLite store; wrk (64 connections, on the other core) sends its warm-up
(every customer created), then a measured run of never-seen webhooks. Over
the measured run, each thread's user and system CPU per accepted webhook
(psutil) and its context switches per webhook (voluntary: it waited for
something, the GIL included; involuntary: the kernel took the core away),
from /proc. The event loop is the main thread; the group commit's thread
and, with `--role run`, the projection worker's are the others.

It answers what the P1 ladder cannot: how much of the ingress's CPU is the
loop's (HTTP, signature, parsing, the futures) and how much the commit
thread's (encryption, the insert, the commit), and whether the two threads
hand the core to each other often (they do not: well under one switch a
webhook, so the GIL's hand-offs are not where the time goes).

With `--role writer`, the process under test is the ingress of `service
ingress --writer` (pinned as in P1), and the store's writer process, which
runs beside wrk on the other core, is split by thread too, with wrk's own
CPU: where the writer shape's waiting comes from (the ingress's core busy
for part of the run only, at P1's best rate).

With `--pg`, each round also runs `service ingress` on PostgreSQL (a fresh
schema, the process pinned the same way, PostgreSQL unpinned) right after
the SQLite one, and prints PostgreSQL's own CPU per webhook beside the
process's threads: the ingress's ladder on PostgreSQL, the same steps on
both stores in the same rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench import data, procs
from bench.pgdb import default_url, fresh_schema, postgres_cpu
from bench.tools import cores, ensure_binary
from bench.wrk import WrkResult, replay
from testkit import traffic
from testkit.procs import started_child

CUSTOMERS = 10_000
# Never-seen webhooks a second of the measured run: above any shape's rate
# here (the bare app's fastest, ~34,000), so a run never uses its file up.
RATE_CAP = 40_000


@dataclass(frozen=True)
class ThreadCpu:
    user: float
    system: float
    voluntary: int
    involuntary: int


def threads(pid: int) -> dict[int, ThreadCpu]:
    found = {}
    for t in psutil.Process(pid).threads():
        switches = {}
        with open(f"/proc/{pid}/task/{t.id}/status") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name.endswith("ctxt_switches"):
                    switches[name] = int(value)
        found[t.id] = ThreadCpu(
            t.user_time,
            t.system_time,
            switches.get("voluntary_ctxt_switches", 0),
            switches.get("nonvoluntary_ctxt_switches", 0),
        )
    return found


def wrk(url: str, requests: Path, seconds: int, core: int) -> WrkResult:
    """A replay of `requests`, reading the answers (the accepted count)."""
    return replay(ensure_binary("wrk"), core, url, requests, seconds=seconds)


def requests(tmp: Path, seconds: int, round_: int) -> tuple[Path, Path]:
    """(the warm-up: every customer created, the measured run's webhooks)."""
    warm, main = tmp / f"warm-{round_}.txt", tmp / f"main-{round_}.txt"
    tag = f"threads{round_}"
    data.write_requests(warm, traffic.webhooks(CUSTOMERS, CUSTOMERS, tag=tag))
    hooks = traffic.webhooks(seconds * RATE_CAP, CUSTOMERS, tag=tag, offset=CUSTOMERS)
    data.write_requests(main, hooks)
    return warm, main


def measure(
    role: str, seconds: int, tmp: Path, round_: int, pg_url: str | None = None
) -> None:
    gen_core, server_core = cores()
    warm, main = requests(tmp, seconds, round_)
    # (label, pid) of each process split by thread: the one under test first.
    split: list[tuple[str, int]] = []
    with contextlib.ExitStack() as stack:
        if role == "writer":
            server = stack.enter_context(
                procs.start_ingress_writer(
                    tmp / f"store-{round_}", server_core, gen_core, tmp,
                    f"writer-{round_}",
                )
            )  # fmt: skip
            log = server.log_path.read_text(errors="replace")
            split = [
                ("ingress", server.ingress_pid),
                ("writer", started_child(log, "writer")),
            ]
            where = "SQLite, the store's writer process"
        elif pg_url is None:
            start = (
                procs.start_ingress_only if role == "ingress" else procs.start_service
            )
            store = tmp / f"store-{round_}"
            server = stack.enter_context(
                start(store, server_core, tmp, f"{role}-{round_}")
            )
            where = "SQLite"
        else:
            url = stack.enter_context(fresh_schema(pg_url, "threads"))
            server = stack.enter_context(
                procs.start_pg_role(
                    role, url, tmp, f"pg-{role}-{round_}", core=server_core
                )
            )
            where = "PostgreSQL"
        split = split or [(role, server.pid)]
        wrk(server.http_url, warm, 30, gen_core)
        before = [threads(pid) for _, pid in split]
        pg_before = postgres_cpu()
        started = time.monotonic()
        run = wrk(server.http_url, main, seconds, gen_core)
        wall = time.monotonic() - started
        after = [threads(pid) for _, pid in split]
        pg_after = postgres_cpu()
    rate, accepted = run.rps, run.accepted
    if run.exhausted:  # (the warm-up always is: it sends its file once)
        # wrk goes on counting the run's whole duration: the rate is a floor.
        print(f"  (the round used up its {main.name}: raise RATE_CAP)")
    print(
        f"round {round_ + 1}, {role} on {where}: {rate:,.0f} req/s, "
        f"{accepted:,} accepted"
    )
    for (label, pid), was, now in zip(split, before, after, strict=True):
        user, system = _print_threads(label, pid, was, now, accepted)
        if len(split) > 1:
            print(
                f"  {label} process: {(user + system) / accepted * 1e6:.1f} us a "
                f"webhook, {(user + system) / wall:.0%} of a core"
            )
    if len(split) > 1:
        # From its run's start: not its script's loading of the file.
        wrk_cpu = run.gen_share * run.seconds
        print(f"  wrk            {wrk_cpu / accepted * 1e6:6.1f} us")
    if pg_url is not None:
        # Its processes' CPU in 10 ms ticks, other users' work included.
        print(
            f"  PostgreSQL     {(pg_after - pg_before) / accepted * 1e6:6.1f} us "
            "a webhook (all its processes)"
        )


def _print_threads(
    label: str,
    pid: int,
    before: dict[int, ThreadCpu],
    after: dict[int, ThreadCpu],
    accepted: int,
) -> tuple[float, float]:
    """Each busy thread's CPU and switches a webhook; the process's
    (user, system) seconds."""
    total_user = total_system = 0.0
    for tid, now in sorted(after.items()):
        was = before.get(tid, ThreadCpu(0.0, 0.0, 0, 0))
        user, system = now.user - was.user, now.system - was.system
        total_user, total_system = total_user + user, total_system + system
        if user + system < 0.01:
            continue
        name = "event loop" if tid == pid else f"thread {tid}"
        print(
            f"  {name:14} user {user / accepted * 1e6:6.1f} us, "
            f"system {system / accepted * 1e6:5.1f} us a webhook; switches a "
            f"webhook: voluntary {(now.voluntary - was.voluntary) / accepted:.2f},"
            f" involuntary {(now.involuntary - was.involuntary) / accepted:.2f}"
        )
    print(
        f"  {'all threads':14} user {total_user / accepted * 1e6:6.1f} us, "
        f"system {total_system / accepted * 1e6:5.1f} us a webhook ({label})"
    )
    return total_user, total_system


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingress_threads")
    parser.add_argument(
        "--role", choices=("ingress", "run", "writer"), default="ingress"
    )
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--pg", action="store_true", help="each round on PostgreSQL too"
    )
    parser.add_argument("--pg-url", default=default_url())
    args = parser.parse_args()
    if args.pg and args.role != "ingress":
        parser.error("--pg measures `service ingress` (the role both stores run)")
    with tempfile.TemporaryDirectory(prefix="ingress-threads-") as tmp:
        for r in range(args.rounds):
            measure(args.role, args.seconds, Path(tmp), r)
            if args.pg:
                measure(args.role, args.seconds, Path(tmp), r, args.pg_url)


if __name__ == "__main__":
    main()
