"""Spans in this process, exported to memory: a webhook's trace continues
the sender's, the group commit links to the requests it carried, the stored
event keeps its trace context and the projection's batch links back to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from sanic import Sanic

from projections.worker import ProjectionWorker
from service.bootstrap import Container
from service.groupcommit import GroupCommitter
from service.tracing import OFF, Tracing, span_context_of, traceparent_of
from service.webhook import Ingress, create_app
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH, webhook_body

SENDER_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SENDER_SPAN = 0x00F067AA0BA902B7
SENDER = f"00-{SENDER_TRACE:032x}-{SENDER_SPAN:016x}-01"


@pytest.fixture
def traced() -> Iterator[tuple[Tracing, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()  # not the global one: this test's own
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Tracing(tracer=provider.get_tracer("test"), provider=provider), exporter
    provider.shutdown()


def app_for(container: Container, tracing: Tracing) -> Sanic:  # type: ignore[type-arg]
    running: dict[str, GroupCommitter] = {}

    async def submit(envelope):  # type: ignore[no-untyped-def]
        return await running["committer"].submit(envelope)

    async def ready() -> dict[str, bool]:
        return {"store": True}

    app = create_app(
        Ingress(
            secrets=(b"test-secret",),
            max_body_bytes=10_000,
            max_header_bytes=8192,
            max_id_length=256,
            request_timeout=5.0,
            keep_alive_timeout=5.0,
            submit=submit,
            quarantine=container.quarantine.add,
            ready=ready,
            metrics=container.metrics,
            tracer=tracing.tracer,
        )
    )

    @app.before_server_start
    async def start(_: Sanic) -> None:  # type: ignore[type-arg]
        running["committer"] = GroupCommitter(
            container.events.append, tracer=tracing.tracer
        )
        running["committer"].start()

    @app.after_server_stop
    async def stop(_: Sanic) -> None:  # type: ignore[type-arg]
        await running.pop("committer").stop()

    return app


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    [found] = [s for s in spans if s.name == name]
    return found


def test_a_webhook_trace_from_the_sender_to_the_projection(
    container: Container, traced: tuple[Tracing, InMemorySpanExporter]
) -> None:
    tracing, exporter = traced
    app = app_for(container, tracing)
    body = webhook_body("evt-t1", "cust-t1", amount=5)
    hdrs = headers(body, "Balance changed") | {"traceparent": SENDER}
    _, answer = app.test_client.post(WEBHOOK_PATH, content=body, headers=hdrs)
    assert answer.status == 200
    spans = exporter.get_finished_spans()
    server = by_name(spans, f"POST {WEBHOOK_PATH}")
    assert server.context.trace_id == SENDER_TRACE
    assert server.parent is not None and server.parent.span_id == SENDER_SPAN
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["loyalty.event.id"] == "evt-t1"
    check = by_name(spans, "verify signature")
    append = by_name(spans, "append")
    for child in (check, append):
        assert child.parent is not None
        assert child.parent.span_id == server.context.span_id
    assert check.attributes["loyalty.signature.valid"] is True
    assert append.attributes["loyalty.position"] == 1
    batch = by_name(spans, "group commit")
    write = by_name(spans, "store write")
    # The batch is a trace of its own, linked both ways with each request.
    assert batch.parent is None and batch.context.trace_id != SENDER_TRACE
    assert [link.context.span_id for link in batch.links] == [append.context.span_id]
    assert [link.context.span_id for link in append.links] == [batch.context.span_id]
    assert write.parent is not None and write.parent.span_id == batch.context.span_id
    assert write.attributes["loyalty.events.stored"] == 1
    # The stored event keeps the request's trace context ...
    [event] = container.events.read(0, 10)
    assert event.traceparent == traceparent_of(server.context)
    assert span_context_of(event.traceparent) is not None
    # ... and the projection's batch links to it.
    exporter.clear()
    worker = ProjectionWorker(
        container.events, container.models, batch_scope=tracing.projection_batch()
    )
    assert worker.run_once() == 1
    project = by_name(exporter.get_finished_spans(), "project batch")
    assert [link.context.trace_id for link in project.links] == [SENDER_TRACE]
    assert project.links[0].context.span_id == server.context.span_id
    assert project.attributes["loyalty.position.last"] == 1


def test_a_webhook_without_a_traceparent_starts_a_trace(
    container: Container, traced: tuple[Tracing, InMemorySpanExporter]
) -> None:
    tracing, exporter = traced
    app = app_for(container, tracing)
    body = webhook_body("evt-t2", "cust-t2", amount=5)
    _, answer = app.test_client.post(
        WEBHOOK_PATH, content=body, headers=headers(body, "Balance changed")
    )
    assert answer.status == 200
    server = by_name(exporter.get_finished_spans(), f"POST {WEBHOOK_PATH}")
    assert server.parent is None
    [event] = container.events.read(0, 10)
    assert event.traceparent == traceparent_of(server.context)


def test_refusals_are_spans_without_the_request_in_them(
    container: Container, traced: tuple[Tracing, InMemorySpanExporter]
) -> None:
    tracing, exporter = traced
    app = app_for(container, tracing)
    body = b'{"id": "x", "email": "secret.person@example.com"}'
    bad = headers(body, "Balance changed")
    _, answer = app.test_client.post(WEBHOOK_PATH, content=body, headers=bad)
    assert answer.status == 400
    server = by_name(exporter.get_finished_spans(), f"POST {WEBHOOK_PATH}")
    assert server.attributes["http.response.status_code"] == 400
    [event] = server.events
    assert event.name == "quarantined"
    assert event.attributes["loyalty.reason"] == "customerId must be a non-empty string"
    unsigned = headers(body, "Balance changed", secret="wrong")
    exporter.clear()
    _, answer = app.test_client.post(WEBHOOK_PATH, content=body, headers=unsigned)
    assert answer.status == 401
    check = by_name(exporter.get_finished_spans(), "verify signature")
    assert check.attributes["loyalty.signature.valid"] is False


def test_with_tracing_off_nothing_is_traced_or_stored(container: Container) -> None:
    app = app_for(container, OFF)
    body = webhook_body("evt-t3", "cust-t3", amount=5)
    hdrs = headers(body, "Balance changed") | {"traceparent": SENDER}
    _, answer = app.test_client.post(WEBHOOK_PATH, content=body, headers=hdrs)
    assert answer.status == 200
    [event] = container.events.read(0, 10)
    assert event.traceparent == ""
    assert OFF.projection_batch() is None and OFF.grpc_interceptors() == []


def test_grpc_calls_are_server_spans_but_probes_are_not(
    traced: tuple[Tracing, InMemorySpanExporter],
) -> None:
    import asyncio

    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    tracing, exporter = traced

    async def call() -> None:
        server = grpc.aio.server(interceptors=tracing.grpc_interceptors())
        probes = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(probes, server)

        async def echo(request: bytes, context: object) -> bytes:
            return request

        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "loyalty.Test", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
                ),
            )
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        await probes.set("", health_pb2.HealthCheckResponse.SERVING)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
                # Any other method is traced, continuing the caller's trace.
                other = channel.unary_unary("/loyalty.Test/Echo")
                assert await other(b"x", metadata=[("traceparent", SENDER)]) == b"x"
        finally:
            await server.stop(None)

    asyncio.run(call())
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["/loyalty.Test/Echo"]
    assert spans[0].context.trace_id == SENDER_TRACE
    assert spans[0].parent is not None and spans[0].parent.span_id == SENDER_SPAN


def test_with_tracing_off_the_request_path_makes_no_tracing_call(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    import opentelemetry.trace

    from service import tracing

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a tracing call with tracing off")

    for module, name in (
        (tracing, "span"),
        (tracing, "extract"),
        (tracing, "traceparent_of"),
        (opentelemetry.trace, "get_current_span"),
        (opentelemetry.trace, "get_tracer"),
    ):
        monkeypatch.setattr(module, name, forbidden)
    app = app_for(container, OFF)
    body = webhook_body("evt-t4", "cust-t4", amount=5)
    hdrs = headers(body, "Balance changed") | {"traceparent": SENDER}
    _, answer = app.test_client.post(WEBHOOK_PATH, content=body, headers=hdrs)
    assert answer.status == 200
    worker = ProjectionWorker(
        container.events, container.models, batch_scope=OFF.projection_batch()
    )
    assert worker.run_once() == 1
