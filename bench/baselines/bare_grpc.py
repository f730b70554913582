"""The bare grpc.aio server: GetCustomer answered from a dict, nothing else.

    python -m bench.baselines.bare_grpc PORT SAMPLES

SAMPLES is a serialized BatchGetCustomersResponse: real Customer messages
fetched from the service, so the answers are the same size as its answers.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

import grpc
from jericommerce.loyalty.v1 import customer_service_pb2 as pb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as pb_grpc


class BareCustomers(pb_grpc.CustomerServiceServicer):
    def __init__(self, customers: dict[str, object]) -> None:
        self.customers = customers

    async def GetCustomer(
        self, request: pb.GetCustomerRequest, context: grpc.aio.ServicerContext
    ):
        customer = self.customers.get(request.customer_id)
        if customer is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "not found")
        return customer


async def serve(port: int, samples: Path) -> None:
    batch = pb.BatchGetCustomersResponse.FromString(samples.read_bytes())
    customers: dict[str, object] = {c.customer_id: c for c in batch.customers}
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    pb_grpc.add_CustomerServiceServicer_to_server(BareCustomers(customers), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(grace=None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("samples", type=Path)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.samples))


if __name__ == "__main__":
    main()
