"""A GetCustomer load generator that asks for a different, random customer
on every call (h2load replays one request body, so one customer).

    python -m bench.grpc_load TARGET IDS_FILE SECONDS [--inflight N] [--channels C]

IDS_FILE holds one customer id a line. grpc's C core does the HTTP/2 work;
this process only picks a pre-serialized request and keeps N calls in
flight over C channels (own connections), with no (de)serialization of
answers. It prints one line of JSON: calls, failed, seconds, and its own CPU
seconds, so the bench can show it was not the bottleneck.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import threading
import time
from pathlib import Path

import grpc
from jericommerce.loyalty.v1 import customer_service_pb2 as pb

METHOD = "/jericommerce.loyalty.v1.CustomerService/GetCustomer"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("target")
    p.add_argument("ids", type=Path)
    p.add_argument("seconds", type=float)
    p.add_argument("--inflight", type=int, default=128)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    ids = args.ids.read_text().split()
    bodies = [pb.GetCustomerRequest(customer_id=i).SerializeToString() for i in ids]
    channels = [
        grpc.insecure_channel(
            args.target, options=[("grpc.use_local_subchannel_pool", 1)]
        )
        for _ in range(args.channels)
    ]
    calls = [c.unary_unary(METHOD, _registered_method=True) for c in channels]
    slots = threading.Semaphore(args.inflight)
    lock = threading.Lock()
    counts = {"ok": 0, "failed": 0}

    def done(future: grpc.Future) -> None:
        key = "failed" if future.exception() is not None else "ok"
        with lock:
            counts[key] += 1
        slots.release()

    rnd = random.Random(args.seed)
    pick, n = rnd.choice, len(calls)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    deadline, i = started + args.seconds, 0
    while time.monotonic() < deadline:
        slots.acquire()
        calls[i % n].future(pick(bodies), timeout=30).add_done_callback(done)
        i += 1
    for _ in range(args.inflight):  # the calls still in flight finish
        slots.acquire()
    elapsed = time.monotonic() - started
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    print(
        json.dumps(
            {
                "calls": counts["ok"],
                "failed": counts["failed"],
                "seconds": elapsed,
                "cpu_seconds": cpu,
            }
        ),
        flush=True,
    )
    for c in channels:
        c.close()


if __name__ == "__main__":
    main()
