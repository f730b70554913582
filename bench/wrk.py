"""Running wrk against a server: P1's load generator (1 thread, 64
connections, `wrk_replay.lua` replaying pre-signed webhooks from a file)
and what it reports, with its own CPU over the run."""

from __future__ import annotations

import json
import math
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.context import Context
from bench.tools import children_cpu, pinned
from testkit.webhooks import WEBHOOK_PATH

CONNECTIONS = 64
LUA = Path(__file__).with_name("wrk_replay.lua")


@dataclass
class WrkResult:
    rps: float
    requests: int
    ok: int
    accepted: int
    duplicate: int
    non2xx: int
    errors: int
    exhausted: bool
    p50_ms: float
    p99_ms: float
    max_ms: float
    seconds: float
    cpu_share: float = 0.0  # of the server's core, while wrk ran
    gen_share: float = 0.0  # of the generator's core, used by wrk


def run_wrk(ctx: Context, url: str, requests: Path, **kw: Any) -> WrkResult:
    """`replay` with the run's wrk, on its load generator's core."""
    return replay(ctx.tools["wrk"], ctx.gen_core, url, requests, **kw)


def replay(
    wrk: str,
    core: int,
    url: str,
    requests: Path,
    *,
    seconds: int,
    mode: str = "once",
    positions: Path | None = None,
    connections: int = CONNECTIONS,
    bodies: bool = True,
) -> WrkResult:
    """`requests` sent by `wrk` pinned to `core`. `bodies=False` for a round
    that needs only the rate: wrk then spends no CPU handing each answer to
    its script (see wrk_replay.lua), and `ok`, `accepted` and `duplicate`
    stay 0 (`non2xx` and `errors` are counted either way)."""
    if positions is not None and not bodies:
        raise ValueError("the accepted positions are read from the bodies")
    argv = [
        wrk, "-t1", f"-c{connections}", f"-d{seconds}s",
        "--timeout", "10s", "-s", str(LUA), url + WEBHOOK_PATH,
        "--", str(requests), mode, "1", "bodies" if bodies else "status",
    ]  # fmt: skip
    if positions is not None:
        argv.append(str(positions))
    out, gen_cpu = _run_wrk(pinned(argv, core))
    line = next(x for x in out.splitlines() if x.startswith("BENCH_JSON "))
    r = json.loads(line.removeprefix("BENCH_JSON "))
    secs = r["duration_us"] / 1e6
    return WrkResult(
        rps=r["requests"] / secs,
        requests=r["requests"],
        ok=r["ok"],
        accepted=r["accepted"],
        duplicate=r["duplicate"],
        non2xx=r["non2xx"],
        errors=r["errors"],
        exhausted=bool(r["exhausted"]),
        p50_ms=r["p50_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        max_ms=r["max_us"] / 1000,
        seconds=secs,
        gen_share=gen_cpu / secs,
    )


def _run_wrk(argv: list[str]) -> tuple[str, float]:
    """wrk's output, and its CPU seconds over its run: without its script's
    init, which loads the whole request file before the clock starts (a
    second or more for a large file, which would weigh on its CPU an event)."""
    cpu = children_cpu()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    init = _init_cpu(proc.pid)
    out, _ = proc.communicate()
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, argv, out)
    return out, children_cpu() - cpu - init


def _init_cpu(pid: int) -> float:
    """The CPU seconds wrk (-t1) spent before its thread started: it inits
    each thread's script, then starts the thread and the clock."""
    try:
        process = psutil.Process(pid)
        while process.num_threads() < 2:
            time.sleep(0.005)
        times = process.cpu_times()
    except psutil.NoSuchProcess:  # it ended (an error): nothing to take off
        return 0.0
    return times.user + times.system


# The rate a warm-up is first given time for. wrk runs for its whole
# duration even when the file is used up, so a generous fixed cap would be
# spent in full each time.
WARM_UP_RATE = 1000  # requests a second


def send_all(ctx: Context, url: str, requests: Path) -> WrkResult:
    """Every request of `requests`, once (a warm-up: customers must exist
    before the measured rounds, or those would mostly create customers).
    A server slower than WARM_UP_RATE gets the file again with twice the
    time: what it already stored comes back as duplicates, quickly."""
    with requests.open() as f:
        lines = sum(1 for _ in f)
    seconds = max(2, math.ceil(lines / WARM_UP_RATE))
    for _ in range(4):
        r = run_wrk(ctx, url, requests, seconds=seconds)
        if r.exhausted:
            return r
        seconds *= 2
    raise RuntimeError(f"warm-up of {url} did not send all of {requests.name}")


def ran_out(results: list[WrkResult]) -> str:
    """A note for rounds that used up their file (their rate is a floor)."""
    n = sum(r.exhausted for r in results)
    return f" ({n} round(s) ran out of unique events early)" if n else ""
