"""The CPU of one GetCustomer call in the service's own handler, with no
network: `.venv/bin/python -m bench.getcustomer_micro`.

Events of the kit's mix are appended into a fresh SQLite store by
bench/data.py and rebuilt into read models with the service's answers (as
`loyalty rebuild` does). The GetCustomer handler is registered as
`create_server` registers it (the bytes-as-they-are serializer, then the
metrics, admission and access-log wrapper), caught on its way to the
server, and called in a loop on the event loop: request deserialized,
handler awaited, response serialized, as grpc.aio does around it. The
best of interleaved rounds is printed as process CPU per call, for the
same customer each call (as h2load asks) and for a random one. What
grpc's C core and the loop's scheduling cost is not in it: P2 measures the
whole.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from jericommerce.loyalty.v1 import customer_service_pb2 as pb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as pb_grpc

from bench.data import populate
from projections.rebuild import rebuild
from projections.stores.sqlite import open_sqlite_read_models
from service import logs
from service.accesslog import AccessLog
from service.adapters.grpc import StandInServer
from service.backends.sqlite.store import open_sqlite
from service.config import Settings
from service.metrics import Metrics
from service.positions import PositionWatch
from service.reads import CustomerReads
from service.rpc.answers import ANSWERS
from service.rpc.customers import CustomerServicer
from service.rpc.limits import Admission
from service.rpc.registration import Registration
from service.rpc.server import send_bytes_as_they_are


class Caught:
    """Stands in for the grpc server: keeps the handlers registered on it."""

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, Any]
    ) -> None:
        self.handlers.update(handlers)


class Context:
    """What the handler asks of grpc's servicer context on a successful call
    without a deadline."""

    def time_remaining(self) -> float | None:
        return None

    def code(self) -> None:
        return None

    def invocation_metadata(self) -> tuple[()]:
        return ()

    async def abort_with_status(self, status: Any) -> None:
        raise RuntimeError(f"the call failed: {status}")


def get_customer_handler(servicer: CustomerServicer, access_log_limit: int) -> Any:
    """GetCustomer's method handler, wrapped as create_server wraps it."""
    settings = Settings.from_environ({}, require_secret=False)
    admission = Admission(
        max_calls=settings.grpc_max_calls,
        max_streams=settings.grpc_max_streams,
        max_streams_per_peer=settings.grpc_max_streams_per_peer,
    )
    caught = Caught()
    registration = Registration(
        Metrics(), admission, AccessLog("service.access.grpc", access_log_limit)
    )
    wrapped = StandInServer(caught, registration.rewrite)
    customers: Any = StandInServer(wrapped, send_bytes_as_they_are)
    pb_grpc.add_CustomerServiceServicer_to_server(servicer, customers)
    return caught.handlers["GetCustomer"]


async def calls(handler: Any, bodies: list[bytes]) -> float:
    """Process CPU seconds for one call per body."""
    fn, parse = handler.unary_unary, handler.request_deserializer
    serialize, context = handler.response_serializer, Context()
    started = time.process_time()
    for body in bodies:
        serialize(await fn(parse(body), context))
    return time.process_time() - started


async def measure(data_dir: Path, args: argparse.Namespace) -> None:
    store, _quarantine, factory = open_sqlite(data_dir)
    models = open_sqlite_read_models(data_dir / "readmodels.sqlite", ANSWERS)
    try:
        rebuild(store, models)
        ids = [cid for cid, _ in models.list_answers(after="", limit=10**9, tier=None)]
        watch = PositionWatch(asyncio.get_running_loop())
        servicer = CustomerServicer(
            CustomerReads(models, store), watch, inline_reads=True
        )
        handler = get_customer_handler(servicer, args.access_log_limit)

        def body(cid: str) -> bytes:
            return pb.GetCustomerRequest(customer_id=cid).SerializeToString()

        rng = random.Random(7)
        ways = {
            "same customer": [body(ids[len(ids) // 2])] * args.calls,
            "random customers": [body(rng.choice(ids)) for _ in range(args.calls)],
        }
        best = dict.fromkeys(ways, float("inf"))
        for _ in range(args.rounds):
            for name, bodies in ways.items():
                best[name] = min(best[name], await calls(handler, bodies))
        print(
            f"{len(ids):,} customers, {args.calls:,} calls a round, best of "
            f"{args.rounds} rounds, CPU us/call:"
        )
        for name, cpu in best.items():
            print(f"  {name:18} {cpu / args.calls * 1e6:7.2f}")
    finally:
        models.db.close()
        factory.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.getcustomer_micro")
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--access-log-limit",
        type=int,
        default=Settings.from_environ({}, require_secret=False).access_log_limit,
        help="lines a second (the service's default unless given; 0: off)",
    )
    args = parser.parse_args()
    with open(os.devnull, "w") as devnull, tempfile.TemporaryDirectory() as tmp:
        # The service's log lines, formatted as it formats them, to nowhere.
        with contextlib.redirect_stderr(devnull):
            logs.configure()
        populate(Path(tmp), args.customers * 10, args.customers, tag="getcustomer")
        asyncio.run(measure(Path(tmp), args))


if __name__ == "__main__":
    main()
