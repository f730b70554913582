"""`python -m bench.stream_memory [--streams N] [--events N]`: the API's
resident memory while N clients replay the whole history with StreamEvents.

The events are appended straight into a fresh SQLite store, `python -m
service run` is started on it, and N streams are opened from after_position
0. Every stream takes its first event and then stalls for a few seconds, as
a slow consumer would (flow control must hold the server back), then reads
to the end. The server's VmRSS is sampled throughout; the figures are RSS
before, the highest sample while the streams were open, and RSS after they
ended.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc
from jericommerce.loyalty.v1 import event_service_pb2 as epb
from jericommerce.loyalty.v1 import event_service_pb2_grpc as egrpc

from bench import data
from bench.procs import free_port
from testkit import procs

MB = 1024


def rss_kb(pid: int) -> int:
    return procs.rss_bytes(pid) // 1024


def start(data_dir: Path, streams: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "WEBHOOK_SECRET": "bench",
        "DATA_DIR": str(data_dir),
        "HTTP_PORT": str(free_port()),
        "GRPC_PORT": str(port),
        "GRPC_MAX_STREAMS": str(streams),
        "GRPC_MAX_STREAMS_PER_PEER": str(streams),
        "LOG_LEVEL": "WARNING",
    }
    with (data_dir / "service.log").open("wb") as log:  # the child keeps a copy
        proc = subprocess.Popen(
            [sys.executable, "-m", "service", "run"], env=env, stdout=log, stderr=log
        )
    return proc, f"127.0.0.1:{port}"


def wait_applied(target: str, head: int) -> None:
    deadline = time.monotonic() + 120
    with grpc.insecure_channel(target) as ch:
        stub = cgrpc.CustomerServiceStub(ch)
        while time.monotonic() < deadline:
            try:
                stub.ListCustomers(
                    cpb.ListCustomersRequest(page_size=1, min_position=head), timeout=5
                )
                return
            except grpc.RpcError:
                time.sleep(0.2)
    raise RuntimeError("the service did not apply the store in time")


async def replay(
    target: str, streams: int, stall: float, failures: list[str]
) -> tuple[int, float]:
    channels = [grpc.aio.insecure_channel(target) for _ in range(8)]
    received = 0
    opened = asyncio.Event()
    started = 0

    async def one(i: int) -> None:
        nonlocal received, started
        stub = egrpc.EventServiceStub(channels[i % len(channels)])
        call = stub.StreamEvents(epb.StreamEventsRequest(after_position=0))
        first, mine = True, 0
        try:
            async for _ in call:
                received += 1
                mine += 1
                if first:
                    first = False
                    started += 1
                    if started == streams:
                        opened.set()
                    await opened.wait()
                    await asyncio.sleep(stall)  # a slow consumer: read nothing
        except grpc.aio.AioRpcError as e:
            failures.append(
                f"{e.code().name} after {mine} events, "
                f"{time.perf_counter() - t0:.0f} s in"
            )
            if first:  # the others must not wait for this one
                started += 1
                if started == streams:
                    opened.set()

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(streams)))
    seconds = time.perf_counter() - t0
    for ch in channels:
        await ch.close()
    return received, seconds


def measure(
    streams: int, events: int, stall: float = 3.0, rounds: int = 1
) -> dict[str, float]:
    """RSS before, the highest sample while the streams of each round were
    open, and after the last round ended. A second round shows what the
    first gave back: if its streams fit in the memory the first freed, the
    highest RSS does not grow."""
    with tempfile.TemporaryDirectory(prefix="stream-memory-") as tmp:
        data_dir = Path(tmp)
        head = data.populate(data_dir, events, max(1, events // 10), tag="sm")
        proc, target = start(data_dir, streams)
        try:
            wait_applied(target, head)
            time.sleep(1)
            before = rss_kb(proc.pid)
            peak = before
            done = threading.Event()

            def sample() -> None:
                nonlocal peak
                while not done.is_set() and proc.poll() is None:
                    peak = max(peak, rss_kb(proc.pid))
                    time.sleep(0.05)

            peaks, received, seconds = [], 0, 0.0
            failures: list[str] = []
            for _ in range(rounds):
                peak = rss_kb(proc.pid)
                done.clear()
                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                try:
                    got, took = asyncio.run(replay(target, streams, stall, failures))
                    received, seconds = received + got, seconds + took
                except Exception:
                    log = (data_dir / "service.log").read_text(errors="replace")
                    print(f"the service's log ends:\n{log[-3000:]}", file=sys.stderr)
                    raise
                finally:
                    done.set()
                    sampler.join()
                    if proc.poll() is not None:
                        log = (data_dir / "service.log").read_text(errors="replace")
                        raise RuntimeError(f"the service exited:\n{log[-3000:]}")
                peaks.append(peak)
                time.sleep(2)  # the streams' last frames and tasks are let go
            after = rss_kb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(10)
    if failures:
        print(f"{len(failures)} streams failed: {failures[:5]}", file=sys.stderr)
    assert failures or received == rounds * streams * events, received
    figures = {
        "streams": streams,
        "events": events,
        "rss_before_mb": before / MB,
        "rss_peak_mb": peaks[0] / MB,
        "rss_after_mb": after / MB,
        "seconds": seconds / rounds,
        "failed_streams": len(failures),
    }
    if rounds > 1:
        figures["rss_peak_last_round_mb"] = peaks[-1] / MB
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    r = measure(args.streams, args.events, rounds=args.rounds)
    again = (
        f", {r['rss_peak_last_round_mb']:.0f} MB at the highest of the last round"
        if args.rounds > 1
        else ""
    )
    print(
        f"{r['streams']} streams replaying {r['events']:,} events each "
        f"({r['seconds']:.0f} s a round): server RSS {r['rss_before_mb']:.0f} MB "
        f"before, {r['rss_peak_mb']:.0f} MB at the highest{again}, "
        f"{r['rss_after_mb']:.0f} MB after; {r['failed_streams']} streams failed"
    )


if __name__ == "__main__":
    main()
