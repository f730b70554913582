"""A small OTLP trace receiver for tests: what a collector would receive.

Speaks both OTLP transports a service may be configured with: OTLP/HTTP
(`POST /v1/traces`, a protobuf `ExportTraceServiceRequest`, optionally
gzipped) and OTLP/gRPC (`TraceService/Export`). It keeps every span with
its resource's attributes, for tests to walk."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import (
    trace_service_pb2,
    trace_service_pb2_grpc,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span


def value_of(value: AnyValue) -> Any:
    """An OTLP attribute value as Python (arrays as lists)."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_of(value.kvlist_value.values)
    return None if kind is None else getattr(value, kind)


def attributes_of(kvs: Any) -> dict[str, Any]:
    return {kv.key: value_of(kv.value) for kv in kvs}


@dataclass(frozen=True)
class Received:
    """One exported span and the attributes of the resource that sent it."""

    resource: dict[str, Any]
    span: Span

    @property
    def name(self) -> str:
        return self.span.name

    @property
    def attributes(self) -> dict[str, Any]:
        return attributes_of(self.span.attributes)

    @property
    def trace_id(self) -> str:
        return self.span.trace_id.hex()

    @property
    def span_id(self) -> str:
        return self.span.span_id.hex()

    @property
    def parent_id(self) -> str:
        return self.span.parent_span_id.hex()

    @property
    def links(self) -> list[tuple[str, str]]:
        """(trace id, span id) of each link, in hex."""
        return [(link.trace_id.hex(), link.span_id.hex()) for link in self.span.links]


class Collected:
    """Spans received so far, from any transport; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[Received] = []
        self.requests = 0

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        with self._lock:
            self.requests += 1
            for resource_spans in request.resource_spans:
                resource = attributes_of(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        self._spans.append(Received(resource, span))

    def spans(self) -> list[Received]:
        with self._lock:
            return list(self._spans)

    def wait_for(
        self, found: Callable[[list[Received]], bool], timeout: float = 15.0
    ) -> list[Received]:
        """The spans once `found(spans)` holds; AssertionError on time-out."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans()
            if found(spans):
                return spans
            if time.monotonic() > deadline:
                names = sorted({s.name for s in spans})
                raise AssertionError(f"spans never arrived; received: {names}")
            time.sleep(0.05)


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, collected: Collected) -> None:
        self.collected = collected

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.collected.add(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpReceiver:
    """Both transports on free local ports, until closed (a context manager).
    Point a service at `http_endpoint` or `grpc_endpoint` as its
    OTEL_EXPORTER_OTLP_ENDPOINT."""

    def __init__(self) -> None:
        self.collected = Collected()
        collected = self.collected

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                data = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    data = gzip.decompress(data)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(data)
                collected.add(request)
                answer = trace_service_pb2.ExportTraceServiceResponse()
                body = answer.SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test says what failed

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http_thread = threading.Thread(
            target=self._http.serve_forever, name="otlp-http", daemon=True
        )
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
            _TraceService(collected), self._grpc
        )
        self._grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self._grpc_port}"

    def __enter__(self) -> OtlpReceiver:
        self._http_thread.start()
        self._grpc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._grpc.stop(None)
        self._http.shutdown()
        self._http.server_close()


def every_text(received: Received) -> Iterator[str]:
    """Every string a span carries: its name, status, attributes (its
    resource's too), events and links, for tests that look for data that
    must not be there."""
    span = received.span
    yield span.name
    yield span.status.message
    yield from _texts(received.resource)
    yield from _texts(attributes_of(span.attributes))
    for event in span.events:
        yield event.name
        yield from _texts(attributes_of(event.attributes))
    for link in span.links:
        yield from _texts(attributes_of(link.attributes))


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _texts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _texts(v)
    else:
        yield str(value)
