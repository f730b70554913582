"""What callers see when things go wrong behind the API: a process left on
the old master key answers UNAVAILABLE (never INTERNAL), and a rebuild that
failed says why in GetProjectionStatus and in /metrics."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from jericommerce.loyalty.v1 import event_service_pb2 as epb
from jericommerce.loyalty.v1 import event_service_pb2_grpc as egrpc
from jericommerce.loyalty.v1 import privacy_service_pb2 as ppb
from jericommerce.loyalty.v1 import privacy_service_pb2_grpc as pgrpc
from jericommerce.loyalty.v1 import projection_service_pb2 as prpb

from projections.projector import EventSource
from projections.worker import ProjectionWorker
from service.bootstrap import build
from service.eventstore import StoreUnavailable
from service.masterkey import write_new_master_key
from service.metrics import Metrics
from service.rebuilds import Rebuilds
from service.rpc.admin import AdminPolicy
from service.rpc.projection_control import ProjectionServicer
from testkit.inproc import InProcessApi
from testkit.privacy import created


def reason(error: grpc.RpcError) -> str:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    return str(info.reason)


def test_a_process_on_the_old_master_key_answers_unavailable(tmp_path: Path) -> None:
    with InProcessApi(tmp_path / "data") as api:
        api.append([("Customer created", "ana", {"id": "a1"})])
        # Another process rotates the key and stores a new customer's events.
        other = build(api.settings)
        try:
            keyring = other.events.keyring
            new = write_new_master_key(tmp_path / "new.key")
            keyring.rotate_master(new, other.quarantine.reseal_master)
            other.events.append([created("z1", "zed")])
            ProjectionWorker(other.events, other.models).run_once()
        finally:
            other.close()
        with grpc.insecure_channel(api.target) as ch:
            stream = epb.StreamEventsRequest(after_position=0)
            with pytest.raises(grpc.RpcError) as streamed:
                list(egrpc.EventServiceStub(ch).StreamEvents(stream, timeout=10))
            export = ppb.ExportCustomerRequest(customer_id="zed")
            with pytest.raises(grpc.RpcError) as exported:
                list(pgrpc.PrivacyServiceStub(ch).ExportCustomer(export, timeout=10))
        for error in (streamed.value, exported.value):
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            assert reason(error) == "MASTER_KEY_ROTATED"
            assert "MASTER_KEY_FILE" in (error.details() or "")


class FailingSource:
    """The event store, failing after its first batch (an outage)."""

    def __init__(self, source: EventSource) -> None:
        self.source = source
        self.reads = 0
        self.fail = True

    def read(self, after: int, limit: int) -> list[object]:
        self.reads += 1
        if self.fail and self.reads > 1:
            raise StoreUnavailable("connection refused")
        return self.source.read(after, 1)  # type: ignore[return-value]

    def head(self) -> int:
        return self.source.head()


def test_a_failed_rebuild_shows_in_the_status_and_the_metrics(tmp_path: Path) -> None:
    from service.config import Settings

    c = build(Settings.from_environ({"DATA_DIR": str(tmp_path)}, require_secret=False))
    try:
        c.events.append([created("a1", "ana"), created("b1", "bob")])
        metrics = Metrics()
        source = FailingSource(c.events)
        rebuilds = Rebuilds(source, c.models, metrics)  # type: ignore[arg-type]
        servicer = ProjectionServicer(
            c.events,
            c.models,
            rebuilds,
            c.models.applied_position,
            AdminPolicy(mtls=False, admins=()),
        )

        def finished() -> prpb.GetProjectionStatusResponse:
            assert rebuilds._thread is not None
            rebuilds._thread.join(30)
            return servicer._status()

        assert servicer._status().last_rebuild_error == ""
        rebuilds.start()
        failed = finished()
        assert not failed.rebuilding
        assert failed.last_rebuild_error == "StoreUnavailable: connection refused"
        text = metrics.exposition().decode()
        assert "loyalty_rebuild_failures_total 1.0" in text
        assert "loyalty_rebuild_last_failed 1.0" in text

        source.fail = False
        rebuilds.start()
        done = finished()
        assert (
            done.last_rebuild_error == "" and done.applied_position == c.events.head()
        )
        text = metrics.exposition().decode()
        assert "loyalty_rebuild_failures_total 1.0" in text
        assert "loyalty_rebuild_last_failed 0.0" in text
    finally:
        c.close()
