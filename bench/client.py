"""Small synchronous gRPC calls the benchmarks make around their loads."""

from __future__ import annotations

import time

import grpc
from jericommerce.loyalty.v1 import customer_pb2
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc
from jericommerce.loyalty.v1 import projection_service_pb2 as ppb
from jericommerce.loyalty.v1 import projection_service_pb2_grpc as pgrpc


def wait_caught_up(target: str, timeout: float = 1800.0) -> None:
    """Return once the projections have applied every stored event."""
    started = time.monotonic()
    with grpc.insecure_channel(target) as channel:
        stub = pgrpc.ProjectionServiceStub(channel)
        while True:
            s = stub.GetProjectionStatus(ppb.GetProjectionStatusRequest(), timeout=5)
            if s.head_position > 0 and s.applied_position >= s.head_position:
                return
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"projections still behind: {s}")
            time.sleep(0.05)


def get_customers(target: str, ids: list[str]) -> list[customer_pb2.Customer]:
    with grpc.insecure_channel(target) as channel:
        stub = cgrpc.CustomerServiceStub(channel)
        return [
            stub.GetCustomer(cpb.GetCustomerRequest(customer_id=i), timeout=10)
            for i in ids
        ]
