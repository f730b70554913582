"""Tracing end to end: the service in its own process, exporting to a real
OTLP receiver over each transport, one webhook followed from the sender's
`traceparent` through the store and the projection to an internal service
that replays it and reads the customer."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import httpx
import pytest
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc
from jericommerce.loyalty.v1 import event_service_pb2 as epb
from jericommerce.loyalty.v1 import event_service_pb2_grpc as egrpc

from testkit.launch import ServiceProcess
from testkit.otlp import OtlpReceiver, Received, every_text
from testkit.signing import SECRET, headers, sign
from testkit.webhooks import WEBHOOK_PATH, webhook_body

pytestmark = pytest.mark.slow

SENDER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SENDER_SPAN = "00f067aa0ba902b7"
SENDER = f"00-{SENDER_TRACE}-{SENDER_SPAN}-01"
# Personal data the webhook carries: no span may hold any of it.
PERSONAL = {
    "email": "trace.person@example.com",
    "firstName": "Tracedfirstname",
    "lastName": "Tracedlastname",
    "phoneNumber": "+34600111222",
}
WEBHOOK_SPAN = f"POST {WEBHOOK_PATH}"
GET_CUSTOMER = "/jericommerce.loyalty.v1.CustomerService/GetCustomer"


def otel_env(endpoint: str, protocol: str) -> dict[str, str]:
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_SERVICE_NAME": "loyalty-e2e",
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms: export soon, for the test
    }


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


def post(svc: ServiceProcess, body: bytes, kind: str, **extra: str) -> httpx.Response:
    return httpx.post(
        svc.url + WEBHOOK_PATH,
        content=body,
        headers=headers(body, kind) | extra,
        timeout=10,
    )


def one(spans: list[Received], name: str, **where: str) -> Received:
    found = [
        s
        for s in spans
        if s.name == name and all(getattr(s, k) == v for k, v in where.items())
    ]
    assert len(found) == 1, (name, where, [s.name for s in spans])
    return found[0]


def test_one_webhook_traced_from_the_sender_to_a_reader_over_http(
    receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = otel_env(receiver.http_endpoint, "http/protobuf")
    with ServiceProcess(tmp_path_factory.mktemp("traced"), **env) as svc:
        body = webhook_body(
            "trace-1",
            "trace-cust",
            email=PERSONAL["email"],
            **{k: v for k, v in PERSONAL.items() if k != "email"},
        )
        answer = post(svc, body, "Customer created", traceparent=SENDER)
        assert answer.status_code == 200, answer.text
        position = answer.json()["position"]
        refused = post(
            svc, b'{"email": "%s"}' % PERSONAL["email"].encode(), "Customer created"
        )
        assert refused.status_code == 400
        with grpc.insecure_channel(svc.grpc_target) as channel:
            # An internal service replays the stream and continues the
            # event's trace when it reads the customer.
            events = egrpc.EventServiceStub(channel)
            [stored] = list(
                events.StreamEvents(
                    epb.StreamEventsRequest(after_position=0), timeout=5
                )
            )
            stored_event = stored.event if stored.HasField("event") else stored
            traceparent = stored_event.traceparent
            assert traceparent.startswith(f"00-{SENDER_TRACE}-")
            customers = cgrpc.CustomerServiceStub(channel)
            customer = customers.GetCustomer(
                cpb.GetCustomerRequest(customer_id="trace-cust", min_position=position),
                metadata=[("traceparent", traceparent)],
                timeout=5,
            )
            assert customer.email == PERSONAL["email"]
            # A read that must wait for a position never applied: the wait
            # is a span of its own, under the call's.
            with pytest.raises(grpc.RpcError) as late:
                customers.GetCustomer(
                    cpb.GetCustomerRequest(
                        customer_id="trace-cust", min_position=10**9
                    ),
                    metadata=[("traceparent", SENDER)],
                    timeout=0.5,
                )
            assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]

        def complete(spans: list[Received]) -> bool:
            names = [s.name for s in spans]
            return (
                names.count(GET_CUSTOMER) >= 2
                and "project batch" in names
                and "wait for min_position" in names
                and names.count(WEBHOOK_SPAN) >= 2
            )

        spans = receiver.collected.wait_for(complete)
    ours = [s for s in spans if s.resource.get("service.name") == "loyalty-e2e"]
    assert len(ours) == len(spans)
    webhook = one(ours, WEBHOOK_SPAN, trace_id=SENDER_TRACE)
    assert webhook.parent_id == SENDER_SPAN
    assert webhook.attributes["loyalty.event.id"] == "trace-1"
    assert webhook.attributes["http.response.status_code"] == 200
    # The stored trace context is the webhook's own span.
    assert traceparent == f"00-{SENDER_TRACE}-{webhook.span_id}-01"
    check = one(ours, "verify signature", trace_id=SENDER_TRACE)
    append = one(ours, "append", trace_id=SENDER_TRACE)
    assert check.parent_id == append.parent_id == webhook.span_id
    batch = next(
        s
        for s in ours
        if s.name == "group commit" and (SENDER_TRACE, append.span_id) in s.links
    )
    assert (batch.trace_id, batch.span_id) in append.links
    write = one(ours, "store write", trace_id=batch.trace_id)
    assert write.parent_id == batch.span_id
    project = next(s for s in ours if s.name == "project batch" and s.links)
    assert (SENDER_TRACE, webhook.span_id) in project.links
    read = one(ours, GET_CUSTOMER, trace_id=SENDER_TRACE, parent_id=webhook.span_id)
    assert read.span.kind == read.span.SPAN_KIND_SERVER
    late_call = one(ours, GET_CUSTOMER, parent_id=SENDER_SPAN)
    wait = one(ours, "wait for min_position", trace_id=SENDER_TRACE)
    assert wait.parent_id == late_call.span_id
    assert wait.attributes["loyalty.min_position"] == 10**9
    assert wait.attributes["loyalty.min_position.reached"] is False
    # The refused webhook: its own trace, the reason as an event.
    refusal = next(
        s for s in ours if s.name == WEBHOOK_SPAN and s.trace_id != SENDER_TRACE
    )
    assert refusal.attributes["http.response.status_code"] == 400
    assert [e.name for e in refusal.span.events] == ["quarantined"]
    # No personal data anywhere: not the body, its values, the secret or
    # the signature.
    forbidden = [*PERSONAL.values(), SECRET, sign(body), body.decode()]
    for span in ours:
        for text in every_text(span):
            for value in forbidden:
                assert value.lower() not in text.lower(), (span.name, text)


def test_the_grpc_transport_exports_too(
    receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> None:
    env = otel_env(receiver.grpc_endpoint, "grpc") | {
        "OTEL_SERVICE_NAME": "loyalty-grpc"
    }
    with ServiceProcess(tmp_path_factory.mktemp("traced-grpc"), **env) as svc:
        body = webhook_body("trace-g1", "trace-g", amount=3)
        assert post(svc, body, "Balance changed", traceparent=SENDER).status_code == 200
        spans = receiver.collected.wait_for(
            lambda spans: any(
                s.resource.get("service.name") == "loyalty-grpc"
                and s.name == "project batch"
                for s in spans
            )
        )
    webhook = one(
        [s for s in spans if s.resource.get("service.name") == "loyalty-grpc"],
        WEBHOOK_SPAN,
    )
    assert (webhook.trace_id, webhook.parent_id) == (SENDER_TRACE, SENDER_SPAN)


def test_with_tracing_off_nothing_is_exported_and_nothing_kept(
    receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> None:
    before = receiver.collected.requests
    with ServiceProcess(tmp_path_factory.mktemp("untraced")) as svc:
        body = webhook_body("plain-1", "plain", amount=1)
        assert post(svc, body, "Balance changed", traceparent=SENDER).status_code == 200
        with grpc.insecure_channel(svc.grpc_target) as channel:
            events = egrpc.EventServiceStub(channel)
            [item] = list(events.StreamEvents(epb.StreamEventsRequest(), timeout=5))
    stored = item.event if item.HasField("event") else item
    assert stored.traceparent == ""
    threading.Event().wait(0.5)  # what an exporter would have sent by now
    assert receiver.collected.requests == before
