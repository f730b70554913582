"""Tracing is configured by the standard OTEL_* variables only, and off
unless they ask for it."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from service.config import ConfigError
from service.tracing import (
    OFF,
    TracingConfigError,
    exporter_names,
    from_environ,
    links_to,
    make_exporter,
    otlp_protocol,
    span_context_of,
    traceparent_of,
)

TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({}, []),
        ({"OTEL_SERVICE_NAME": "loyalty"}, []),
        ({"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "otlp, console"}, ["otlp", "console"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "x"}, []),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, []),
    ],
)
def test_exporters_only_when_asked(environ: dict[str, str], names: list[str]) -> None:
    assert exporter_names(environ) == names


def test_off_sets_up_no_sdk() -> None:
    assert from_environ({}) is OFF
    assert not OFF.enabled and OFF.provider is None


@pytest.mark.parametrize(
    ("environ", "protocol"),
    [
        ({}, "http/protobuf"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "grpc"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, "http/protobuf"),
        (
            {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            },
            "grpc",
        ),
    ],
)
def test_the_otlp_protocol(environ: dict[str, str], protocol: str) -> None:
    assert otlp_protocol(environ) == protocol


def test_each_protocol_gets_its_exporter() -> None:
    grpc = make_exporter("otlp", {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    http = make_exporter("otlp", {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    assert isinstance(grpc, GrpcExporter) and isinstance(http, HttpExporter)
    assert isinstance(make_exporter("console", {}), ConsoleSpanExporter)
    for exporter in (grpc, http):
        exporter.shutdown()


@pytest.mark.parametrize(
    "environ",
    [
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
        {"OTEL_TRACES_EXPORTER": "zipkin"},
    ],
)
def test_what_cannot_be_done_is_a_start_up_error(environ: dict[str, str]) -> None:
    with pytest.raises(TracingConfigError) as refused:
        from_environ(environ)
    assert isinstance(refused.value, ConfigError)  # the CLI prints it and exits


def test_w3c_text_round_trips() -> None:
    context = span_context_of(TP)
    assert context is not None and context.is_remote
    assert traceparent_of(context) == TP
    assert span_context_of("") is None
    assert span_context_of("00-not-a-trace-01") is None
    assert span_context_of("00-" + "0" * 32 + "-00f067aa0ba902b7-01") is None


def test_links_skip_empty_malformed_and_repeated_contexts() -> None:
    other = TP.replace("00f067aa0ba902b7", "00f067aa0ba902b8")
    links = links_to(["", TP, "garbage", TP, other])
    assert [traceparent_of(link.context) for link in links] == [TP, other]
