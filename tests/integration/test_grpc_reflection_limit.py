"""Server reflection is counted as a stream by the API's own admission (no
call is outside it), so it answers while there is room and is refused with
the stream limit's status when there is none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from jericommerce.loyalty.v1 import event_service_pb2 as epb
from jericommerce.loyalty.v1 import event_service_pb2_grpc as egrpc

from testkit.inproc import InProcessApi


def list_services(channel: grpc.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    answers = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    return {s.name for a in answers for s in a.list_services_response.service}


def test_reflection_is_within_the_stream_limit(tmp_path: Path) -> None:
    with (
        InProcessApi(
            tmp_path, GRPC_MAX_STREAMS="2", GRPC_MAX_STREAMS_PER_PEER="5"
        ) as api,
        grpc.insecure_channel(api.target) as ch,
    ):
        assert "jericommerce.loyalty.v1.CustomerService" in list_services(ch)
        events = egrpc.EventServiceStub(ch)
        request = epb.StreamEventsRequest(after_position=0, follow=True)
        held = [events.StreamEvents(request, timeout=30) for _ in range(2)]
        for h in held:
            assert next(h).WhichOneof("item") == "caught_up"
        with pytest.raises(grpc.RpcError) as raised:
            list_services(ch)
        err: Any = raised.value
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        status = rpc_status.from_call(err)
        assert status is not None
        info = error_details_pb2.ErrorInfo()
        assert any(d.Unpack(info) for d in status.details)
        assert info.reason == "TOO_MANY_STREAMS"
        for h in held:
            h.cancel()
