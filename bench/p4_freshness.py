"""P4 freshness: at half of P1's throughput, how long from a webhook's 2xx
until GetCustomer shows it.

A paced load of unique signed webhooks runs at half P1's measured rate.
Among them, a probe posts a webhook, and the moment its 2xx arrives calls
GetCustomer(customer_id, min_position = the answered position); the time
that call takes is the freshness. The generator runs in a child process
pinned to the load-generator core:

    python -m bench.p4_freshness URL GRPC_TARGET RATE SECONDS INTERVAL FILE
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench import data, procs
from bench.context import Context
from bench.report import Row
from bench.tools import client_result
from testkit import traffic
from testkit.webhooks import WEBHOOK_PATH

CONNECTIONS = 16
_LENGTH = re.compile(rb"(?i)content-length:\s*(\d+)")


def _request(sig: str, name: str, body: bytes) -> bytes:
    head = (
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\n"
        f"x-jericommerce-hmac-sha256: {sig}\r\n"
        f"x-jericommerce-event-type: {name}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Http:
    """One keep-alive HTTP/1.1 connection, one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    async def open(self) -> Http:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def post(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = _LENGTH.search(head)
        body = await self.reader.readexactly(int(length[1]) if length else 0)
        return int(head.split(b" ", 2)[1]), body


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def generate(
    url: str, target: str, rate: float, seconds: float, interval: float, path: Path
) -> dict[str, float]:
    import grpc
    from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
    from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc

    host, port = url.removeprefix("http://").split(":")
    pool = data.read_requests(path)
    requests = [_request(*r) for r in pool]
    customers = [json.loads(body)["customerId"] for _, _, body in pool]
    nxt = 0
    errors = 0
    sent = 0
    fresh: list[float] = []
    acks: list[float] = []
    start = time.perf_counter()
    end = start + seconds

    def take() -> int:
        nonlocal nxt
        nxt += 1
        if nxt > len(requests):
            raise RuntimeError("out of unique requests")
        return nxt - 1

    async def background(conn: Http, k: int) -> None:
        nonlocal errors, sent
        bg_rate = max(rate - 1 / interval, 1.0)
        slot = k
        while (due := start + slot / bg_rate) < end:
            slot += CONNECTIONS
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            status, _ = await conn.post(requests[take()])
            sent += 1
            errors += status != 200

    async def probe(conn: Http) -> None:
        nonlocal errors, sent
        async with grpc.aio.insecure_channel(target) as channel:
            stub = cgrpc.CustomerServiceStub(channel)
            while time.perf_counter() < end:
                i = take()
                posted = time.perf_counter()
                status, body = await conn.post(requests[i])
                acked = time.perf_counter()
                sent += 1
                if status != 200:
                    errors += 1
                    continue
                position = json.loads(body)["position"]
                req = cpb.GetCustomerRequest(
                    customer_id=customers[i], min_position=position
                )
                await stub.GetCustomer(req, timeout=5)
                fresh.append(time.perf_counter() - acked)
                acks.append(acked - posted)
                await asyncio.sleep(max(0.0, interval - (time.perf_counter() - posted)))

    conns = [await Http(host, int(port)).open() for _ in range(CONNECTIONS + 1)]
    await asyncio.gather(
        probe(conns[0]), *(background(c, k) for k, c in enumerate(conns[1:]))
    )
    elapsed = time.perf_counter() - start
    ms = [x * 1000 for x in fresh]
    return {
        "probes": len(ms),
        "p50_ms": statistics.median(ms),
        "p99_ms": _pct(ms, 0.99),
        "max_ms": max(ms),
        "ack_p50_ms": statistics.median(acks) * 1000,
        "rate": sent / elapsed,
        "errors": errors,
    }


def main() -> None:
    url, target, rate, seconds, interval, path = sys.argv[1:7]
    result = asyncio.run(
        generate(url, target, float(rate), float(seconds), float(interval), Path(path))
    )
    print(json.dumps(result))


def probe(ctx: Context, svc: procs.Server, rate: float, path: Path) -> dict[str, Any]:
    """This module's client (main, on the generator's core) against `svc`:
    the load from `path` at `rate` and the probes; their figures."""
    return probe_at(ctx, svc.http_url, svc.grpc_target, rate, path)


def probe_at(
    ctx: Context, http_url: str, grpc_target: str, rate: float, path: Path
) -> dict[str, Any]:
    """`probe` where the webhooks and the calls go to different processes."""
    s = ctx.sizes
    argv = [
        sys.executable, "-m", "bench.p4_freshness", http_url,
        grpc_target, f"{rate:.1f}", str(s.p4_seconds),
        str(s.p4_probe_interval), str(path),
    ]  # fmt: skip
    return client_result(argv, ctx.gen_core, procs.ROOT)


def requests(ctx: Context, rate: float, path: Path, tag: str) -> Path:
    """Enough never-seen webhooks for a run at `rate`, written to `path`."""
    s = ctx.sizes
    needed = int(rate * s.p4_seconds * 1.2 + s.p4_seconds / s.p4_probe_interval) + 1000
    data.write_requests(path, traffic.webhooks(needed, s.p1_customers, tag=tag))
    return path


TARGET = "< 50 ms"


def passed(r: dict[str, Any]) -> bool:
    """P4's target, for a run of this module's client: p99 under 50 ms and
    every request answered."""
    return bool(r["p99_ms"] < 50 and r["errors"] == 0)


def freshness_row(name: str, r: dict[str, Any], rate: float, note: str = "") -> Row:
    return Row(
        name,
        r["p99_ms"],
        "ms",
        target=TARGET,
        passed=passed(r),
        note=f"2xx -> GetCustomer(min_position) answered: p50 {r['p50_ms']:.1f} "
        f"ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms over "
        f"{r['probes']} probes; load {r['rate']:,.0f} webhooks/s (asked "
        f"{rate:,.0f}, half of P1), webhook answered in {r['ack_p50_ms']:.1f} "
        f"ms (p50); {r['errors']} errors" + note,
    )


def run(ctx: Context) -> list[Row]:
    rate = ctx.shared["p1_rps"] / 2
    path = requests(ctx, rate, ctx.dir("p4") / "requests.txt", "p4")
    data_dir = ctx.dir("p4/store")
    with procs.start_service(
        data_dir, ctx.server_core, ctx.out / "logs", "p4-service"
    ) as svc:
        r = probe(ctx, svc, rate, path)
    extra: list[Row] = []
    if ctx.split:
        from bench import split

        shared = requests(ctx, rate, ctx.dir("p4s") / "requests.txt", "p4s")
        extra = split.p4(ctx, rate, shared)
    return [freshness_row("P4 freshness p99", r, rate), *extra]


if __name__ == "__main__":
    main()
