"""Where `service ingress`'s CPU goes by thread, under P1's load.

    python -m bench.ingress_threads [--role ingress|run] [--seconds 8]
        [--rounds 2]

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
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench import data, procs
from bench.p1_ingest import CONNECTIONS, LUA
from bench.tools import cores, ensure_binary, pinned
from service.webhook import WEBHOOK_PATH
from testkit import traffic

CUSTOMERS = 10_000


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


def wrk(url: str, requests: Path, seconds: int, core: int) -> tuple[float, int]:
    argv = [
        ensure_binary("wrk"), "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s",
        "--timeout", "10s", "-s", str(LUA), url + WEBHOOK_PATH,
        "--", str(requests), "once", "1",
    ]  # fmt: skip
    out = subprocess.run(
        pinned(argv, core), capture_output=True, text=True, check=True
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH_JSON "))
    r = json.loads(line.removeprefix("BENCH_JSON "))
    return r["requests"] / (r["duration_us"] / 1e6), int(r["accepted"])


def measure(role: str, seconds: int, tmp: Path, round_: int) -> None:
    gen_core, server_core = cores()
    warm, main = tmp / f"warm-{round_}.txt", tmp / f"main-{round_}.txt"
    tag = f"threads{round_}"
    data.write_requests(warm, traffic.webhooks(CUSTOMERS, CUSTOMERS, tag=tag))
    hooks = traffic.webhooks(seconds * 15_000, CUSTOMERS, tag=tag, offset=CUSTOMERS)
    data.write_requests(main, hooks)
    start = procs.start_ingress_only if role == "ingress" else procs.start_service
    store = tmp / f"store-{round_}"
    with start(store, server_core, tmp, f"{role}-{round_}") as server:
        wrk(server.http_url, warm, 30, gen_core)
        before = threads(server.pid)
        rate, accepted = wrk(server.http_url, main, seconds, gen_core)
        after = threads(server.pid)
    print(f"round {round_ + 1}, {role}: {rate:,.0f} req/s, {accepted:,} accepted")
    total_user = total_system = 0.0
    for tid, now in sorted(after.items()):
        was = before.get(tid, ThreadCpu(0.0, 0.0, 0, 0))
        user, system = now.user - was.user, now.system - was.system
        total_user, total_system = total_user + user, total_system + system
        if user + system < 0.01:
            continue
        name = "event loop" if tid == server.pid else f"thread {tid}"
        print(
            f"  {name:14} user {user / accepted * 1e6:6.1f} us, "
            f"system {system / accepted * 1e6:5.1f} us a webhook; switches a "
            f"webhook: voluntary {(now.voluntary - was.voluntary) / accepted:.2f},"
            f" involuntary {(now.involuntary - was.involuntary) / accepted:.2f}"
        )
    print(
        f"  all threads    user {total_user / accepted * 1e6:6.1f} us, "
        f"system {total_system / accepted * 1e6:5.1f} us a webhook"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ingress_threads")
    parser.add_argument("--role", choices=("ingress", "run"), default="ingress")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ingress-threads-") as tmp:
        for r in range(args.rounds):
            measure(args.role, args.seconds, Path(tmp), r)


if __name__ == "__main__":
    main()
