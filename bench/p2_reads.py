"""P2 reads: GetCustomer over h2load against the service (a store of
P3's customers) and against a bare grpc.aio handler answering from a dict.

h2load speaks gRPC here: a POST of one length-prefixed GetCustomerRequest
with `content-type: application/grpc` and `te: trailers`, many streams in
flight on a few HTTP/2 connections. It replays one request body, so every
call asks for the same customer (one of median answer size); both servers
get the same requests. The bare server answers with real Customer messages
fetched from the service first, so the answers are the same size.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from jericommerce.loyalty.v1 import customer_service_pb2 as cpb

from bench import client, procs, profiling, traced
from bench.context import Context
from bench.report import Row
from bench.tools import children_cpu, pinned
from testkit import traffic

METHOD = "/jericommerce.loyalty.v1.CustomerService/GetCustomer"
SAMPLES = 200


@dataclass
class H2Result:
    rps: float
    succeeded: int
    failed: int
    mean_ms: float
    bytes_per_answer: float
    cpu_share: float = 0.0  # of the server's core, while h2load ran
    gen_share: float = 0.0  # of the generator's core, used by h2load


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    assert m, text
    return float(m[1]) * _UNITS[m[2]]


def run_h2load(ctx: Context, target: str, body: Path, seconds: int) -> H2Result:
    s = ctx.sizes
    argv = [
        ctx.tools["h2load"], "-D", str(seconds),
        "--warm-up-time", str(s.warmup_seconds),
        "-c", str(s.p2_connections), "-m", str(s.p2_streams), "-t", "1",
        "-d", str(body),
        "-H", "content-type: application/grpc", "-H", "te: trailers",
        f"http://{target}{METHOD}",
    ]  # fmt: skip
    cpu, t0 = children_cpu(), time.monotonic()
    out = subprocess.run(
        pinned(argv, ctx.gen_core), capture_output=True, text=True, check=True
    ).stdout
    gen_share = (children_cpu() - cpu) / (time.monotonic() - t0)
    rps = float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out)[1])  # type: ignore[index]
    req = re.search(r"requests: .* (\d+) succeeded, (\d+) failed", out)
    data_bytes = re.search(r"\((\d+)\) data", out)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out)
    assert req and data_bytes and mean, out
    ok = int(req[1])
    per_answer = int(data_bytes[1]) / max(ok, 1)
    return H2Result(rps, ok, int(req[2]), _ms(mean[1]), per_answer, gen_share=gen_share)


def measured(ctx: Context, server: procs.Server, body: Path) -> H2Result:
    """An h2load run against `server`, with the server's CPU use over it."""
    cpu, t0 = server.cpu_seconds(), time.monotonic()
    result = run_h2load(ctx, server.grpc_target, body, ctx.sizes.load_seconds)
    result.cpu_share = (server.cpu_seconds() - cpu) / (time.monotonic() - t0)
    return result


@dataclass
class RandomResult:
    rps: float
    failed: int
    gen_share: float  # of the generator's core
    cpu_share: float = 0.0  # of the server's core


def run_random(ctx: Context, server: procs.Server, ids: Path) -> RandomResult:
    """bench.grpc_load against `server`: a random customer of `ids` a call."""
    argv = [
        sys.executable, "-m", "bench.grpc_load", server.grpc_target, str(ids),
        str(ctx.sizes.load_seconds),
        "--inflight", str(ctx.sizes.p2_connections * ctx.sizes.p2_streams),
        "--channels", str(ctx.sizes.p2_connections),
    ]  # fmt: skip
    cpu, t0 = server.cpu_seconds(), time.monotonic()
    out = subprocess.run(
        pinned(argv, ctx.gen_core), capture_output=True, text=True, check=True
    ).stdout
    server_share = (server.cpu_seconds() - cpu) / (time.monotonic() - t0)
    r = json.loads(out.strip().splitlines()[-1])
    return RandomResult(
        r["calls"] / r["seconds"],
        r["failed"],
        r["cpu_seconds"] / r["seconds"],
        server_share,
    )


def _prepare(ctx: Context, target: str, customers: int) -> tuple[Path, Path, int]:
    """(samples file for the bare server, request body file, answer size)."""
    step = max(customers // SAMPLES, 1)
    ids = [traffic.customer_id(n) for n in range(0, customers, step)]
    found = client.get_customers(target, ids)
    d = ctx.dir("p2")
    samples = d / "samples.bin"
    samples.write_bytes(
        cpb.BatchGetCustomersResponse(customers=found).SerializeToString()
    )
    by_size = sorted(found, key=lambda c: c.ByteSize())
    median = by_size[len(by_size) // 2]
    request = cpb.GetCustomerRequest(customer_id=median.customer_id).SerializeToString()
    body = d / "request.grpc"
    body.write_bytes(b"\x00" + struct.pack(">I", len(request)) + request)
    (d / "sample-ids.txt").write_text("\n".join(c.customer_id for c in found))
    every = "\n".join(traffic.customer_id(n) for n in range(customers))
    (d / "all-ids.txt").write_text(every)
    return samples, body, median.ByteSize()


def run(ctx: Context) -> list[Row]:
    s = ctx.sizes
    data_dir: Path = ctx.shared["p3_store"]
    logs = ctx.out / "logs"
    got_runs: list[H2Result] = []
    base_runs: list[H2Result] = []
    got_random: list[RandomResult] = []
    base_random: list[RandomResult] = []
    with procs.start_service(data_dir, ctx.server_core, logs, "p2-service") as svc:
        client.wait_caught_up(svc.grpc_target)
        samples, body, size = _prepare(ctx, svc.grpc_target, s.p3_customers)
        with procs.start_bare_grpc(ctx.server_core, logs, samples) as bare:
            # Interleaved rounds, so a burst of load from elsewhere hits both.
            for _ in range(s.rounds):
                base_runs.append(measured(ctx, bare, body))
                got_runs.append(measured(ctx, svc, body))
            d = ctx.dir("p2")
            for _ in range(s.rounds):
                base_random.append(run_random(ctx, bare, d / "sample-ids.txt"))
                got_random.append(run_random(ctx, svc, d / "all-ids.txt"))
        if ctx.profile:
            _profile(ctx, svc, body)
    on_runs, on_base, spans = _traced(ctx, data_dir, samples, body)
    got = max(got_runs, key=lambda r: r.rps)
    base = max(base_runs, key=lambda r: r.rps)
    ratio = got.rps / base.rps
    each = ", ".join(f"{r.rps:,.0f}" for r in got_runs)
    each_bare = ", ".join(f"{r.rps:,.0f}" for r in base_runs)
    failed = sum(r.failed for r in got_runs)
    rnd = max(got_random, key=lambda r: r.rps)
    rnd_base = max(base_random, key=lambda r: r.rps)
    rnd_failed = sum(r.failed for r in got_random + base_random)
    rows = [
        Row(
            "P2 GetCustomer",
            got.rps,
            "calls/s",
            base.rps,
            ratio,
            ">= 0.75x",
            ratio >= 0.75 and failed == 0,
            note=f"{s.p3_customers:,} customers stored; best of {s.rounds} "
            f"interleaved rounds of {s.load_seconds} s (service {each}; bare "
            f"{each_bare} calls/s); h2load {s.p2_connections} connections x "
            f"{s.p2_streams} streams; Customer message {size} B (h2load DATA per "
            f"call {got.bytes_per_answer:.0f} B vs bare {base.bytes_per_answer:.0f}"
            f" B); mean latency {got.mean_ms:.1f} ms vs {base.mean_ms:.1f} ms; "
            f"server CPU {got.cpu_share:.0%} vs {base.cpu_share:.0%} of a core "
            f"(h2load: {base.gen_share:.0%} of its own)",
        ),
        Row(
            "P2 GetCustomer, random customers",
            rnd.rps,
            "calls/s",
            rnd_base.rps,
            rnd.rps / rnd_base.rps,
            note=f"bench.grpc_load (grpc C core, {s.p2_connections} channels, "
            f"{s.p2_connections * s.p2_streams} calls in flight), a random one of "
            f"all {s.p3_customers:,} customers each call; the bare server a random "
            f"one of its {SAMPLES} samples; best of {s.rounds} interleaved rounds "
            f"(service {', '.join(f'{r.rps:,.0f}' for r in got_random)}; bare "
            f"{', '.join(f'{r.rps:,.0f}' for r in base_random)}). Generator CPU "
            f"{rnd.gen_share:.0%} of its core against the service, "
            f"{rnd_base.gen_share:.0%} against the bare server (where it drives "
            f"{rnd_base.rps / rnd.rps:.2f}x the service's rate); server CPU "
            f"{rnd.cpu_share:.0%} vs {rnd_base.cpu_share:.0%}; {rnd_failed} failed",
        ),
    ]
    if on_runs:
        rows.append(_traced_row(ctx, on_runs, on_base, ratio, spans))
    return rows


def _profile(ctx: Context, svc: procs.Server, body: Path) -> None:
    seconds = ctx.sizes.profile_seconds
    load = threading.Thread(
        target=run_h2load, args=(ctx, svc.grpc_target, body, seconds + 2)
    )
    load.start()
    time.sleep(ctx.sizes.warmup_seconds)
    rec = profiling.record(
        ctx.tools["py-spy"], svc.pid, seconds, ctx.out / "profile-p2.txt", ctx.gen_core
    )
    load.join()
    ctx.shared.setdefault("profiles", []).append(
        profiling.summarize(rec, "P2 GetCustomer (service under h2load)")
    )


def _traced(
    ctx: Context, data_dir: Path, samples: Path, body: Path
) -> tuple[list[H2Result], list[H2Result], str]:
    """The same calls with tracing on (after the service with it off has
    stopped: one service on the store at a time), interleaved with the bare
    server again, so its ratio compares with the one off."""
    on_runs: list[H2Result] = []
    on_base: list[H2Result] = []
    if not ctx.tracing:
        return on_runs, on_base, ""
    logs = ctx.out / "logs"
    with (
        traced.service(ctx, "p2-traced", data_dir) as on,
        procs.start_bare_grpc(ctx.server_core, logs, samples) as bare,
    ):
        assert on is not None
        client.wait_caught_up(on[0].grpc_target)
        for _ in range(ctx.sizes.rounds):
            on_base.append(measured(ctx, bare, body))
            on_runs.append(measured(ctx, on[0], body))
        spans = traced.spans_note(on[1])
    return on_runs, on_base, spans


def _traced_row(
    ctx: Context,
    on_runs: list[H2Result],
    on_base: list[H2Result],
    off_ratio: float,
    spans: str,
) -> Row:
    got = max(on_runs, key=lambda r: r.rps)
    base = max(on_base, key=lambda r: r.rps)
    failed = sum(r.failed for r in on_runs)
    return Row(
        "P2 GetCustomer with tracing on",
        got.rps,
        "calls/s",
        base.rps,
        got.rps / base.rps,
        note=f"OTLP/HTTP to a receiver, default sampler (a server span per "
        f"call) and batch processor; best of {ctx.sizes.rounds} rounds "
        f"interleaved with the bare server (service "
        f"{', '.join(f'{r.rps:,.0f}' for r in on_runs)} calls/s); ratio with "
        f"tracing off {off_ratio:.2f}x; {failed} failed; {spans}",
    )
