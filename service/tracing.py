"""OpenTelemetry tracing: set up from the standard OTEL_* variables, or not at
all. The one place that knows the SDK, its exporters and the W3C format.

Off unless configured: with no OTEL_TRACES_EXPORTER (or `none`) and no OTLP
endpoint, no SDK is set up and every part of the service skips its spans
(they hold no tracer), so tracing costs nothing when off. When on, the SDK
reads its own variables as documented by OpenTelemetry: the sampler
(OTEL_TRACES_SAMPLER, default parent-based always-on), the resource
(OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES), the batch processor
(OTEL_BSP_*) and the exporter's endpoint, headers, timeout and TLS
(OTEL_EXPORTER_OTLP_*). docs/tracing.md lists the spans.

Spans carry ids, positions, counts and outcomes only: never a body, an
email, a name or a secret.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from projections.events import RecordedEvent
from projections.worker import BatchScope
from service import logs
from service.config import ConfigError

NAME = "loyalty"  # the tracer's name, and the service's unless OTEL_SERVICE_NAME
PROTOCOLS = ("http/protobuf", "grpc")
_W3C = TraceContextTextMapPropagator()
log = logs.get(__name__)


class TracingConfigError(ConfigError):
    """An OTEL_* variable names something this service cannot do."""


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The span exporters the environment asks for; [] means tracing is off.
    An OTLP endpoint alone turns on the OTLP exporter."""
    if _flag(environ.get("OTEL_SDK_DISABLED")):
        return []
    named = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if named:
        names = [n.strip() for n in named.split(",") if n.strip()]
        return [] if names == ["none"] else names
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return ["otlp"] if endpoint else []


def otlp_protocol(environ: Mapping[str, str]) -> str:
    """OTLP's transport: the traces-specific variable wins, then the general
    one; http/protobuf by default, as the OpenTelemetry specification says."""
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol not in PROTOCOLS:
        raise TracingConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported; "
            f"use one of {', '.join(PROTOCOLS)}"
        )
    return protocol


def make_exporter(name: str, environ: Mapping[str, str]) -> Any:
    """A span exporter by its OTEL_TRACES_EXPORTER name. The exporter reads
    its endpoint, headers and timeout from the environment itself."""
    if name == "otlp":
        if otlp_protocol(environ) == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcExporter,
            )

            return GrpcExporter()
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        return HttpExporter()
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    raise TracingConfigError(
        f"OTEL_TRACES_EXPORTER={name!r} is not supported; use otlp, console or none"
    )


@dataclass(frozen=True)
class Tracing:
    """The process's tracing: `tracer` is None when tracing is off, and every
    part of the service then skips its spans."""

    tracer: Tracer | None = None
    provider: Any = None  # the SDK's TracerProvider, when on

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    def shutdown(self) -> None:
        """Export what is pending and stop (at process exit)."""
        if self.provider is not None:
            self.provider.shutdown()

    def grpc_interceptors(self) -> list[Any]:
        """The OpenTelemetry project's grpc.aio server interceptor: a server
        span per call that continues the caller's `traceparent` metadata."""
        if self.provider is None:
            return []
        from opentelemetry.instrumentation.grpc import aio_server_interceptor
        from opentelemetry.instrumentation.grpc.filters import (
            any_of,
            health_check,
            negate,
            service_prefix,
        )

        # Probes and reflection would fill the traces with noise.
        probes = any_of(health_check(), service_prefix("grpc.reflection."))
        return [
            aio_server_interceptor(  # type: ignore[no-untyped-call]
                tracer_provider=self.provider, filter_=negate(probes)
            )
        ]

    def projection_batch(self) -> BatchScope | None:
        """What the projection worker wraps each batch in (None when off): a
        span linked to the trace of every event it applies."""
        tracer = self.tracer
        if tracer is None:
            return None

        @contextlib.contextmanager
        def batch(events: Sequence[RecordedEvent]) -> Iterator[None]:
            links = links_to(e.traceparent for e in events)
            with span(
                tracer,
                "project batch",
                kind=SpanKind.INTERNAL,
                links=links,
                attributes={
                    "loyalty.events": len(events),
                    "loyalty.events.traced": len(links),
                    "loyalty.position.first": events[0].position,
                    "loyalty.position.last": events[-1].position,
                },
            ):
                yield

        return batch


OFF = Tracing()


@contextlib.contextmanager
def span(tracer: Tracer, name: str, **kwargs: Any) -> Iterator[Span]:
    """`tracer.start_as_current_span` that keeps exception texts out of the
    span (they may quote a request or a database value): a failure is the
    span's ERROR status with the exception's type name only."""
    with tracer.start_as_current_span(
        name, record_exception=False, set_status_on_exception=False, **kwargs
    ) as current:
        try:
            yield current
        except BaseException as e:
            current.set_status(StatusCode.ERROR, type(e).__name__)
            raise


def from_environ(environ: Mapping[str, str]) -> Tracing:
    """The SDK set up as the OTEL_* variables say, or OFF. Installs the SDK's
    provider as the process's global one (the grpc instrumentation and any
    library use it) the first time it is on."""
    names = exporter_names(environ)
    if not names:
        return OFF
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporters = [make_exporter(name, environ) for name in names]
    named = environ.get("OTEL_SERVICE_NAME") or "service.name=" in environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES;
    # attributes passed here would override them, so only a default.
    resource = Resource.create({} if named else {SERVICE_NAME: NAME})
    # The sampler comes from OTEL_TRACES_SAMPLER / _ARG (TracerProvider).
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    # Not the endpoint: a URL may carry credentials.
    log.info(
        "tracing on",
        exporters=names,
        protocol=otlp_protocol(environ) if "otlp" in names else None,
        sampler=environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on"),
    )
    return Tracing(tracer=provider.get_tracer(NAME), provider=provider)


# -- W3C trace context ---------------------------------------------------------


def extract(headers: Mapping[str, str]) -> Any:
    """The context a request's headers carry (`traceparent`, `tracestate`),
    by the configured propagators (OTEL_PROPAGATORS, W3C by default)."""
    return propagate.extract(headers)


def traceparent_of(context: SpanContext) -> str:
    """A span's context as W3C `traceparent` text; "" when it has none."""
    if not context.is_valid:
        return ""
    return (
        f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    )


def current_traceparent() -> str:
    return traceparent_of(trace.get_current_span().get_span_context())


def span_context_of(traceparent: str) -> SpanContext | None:
    """The span context W3C text names, or None for "" or malformed text."""
    if not traceparent:
        return None
    context = _W3C.extract({"traceparent": traceparent})
    span_context = trace.get_current_span(context).get_span_context()
    return span_context if span_context.is_valid else None


def links_to(traceparents: Iterator[str] | Sequence[str]) -> list[Link]:
    """One link per distinct valid trace context, in order."""
    seen: set[str] = set()
    links = []
    for text in traceparents:
        if text and text not in seen:
            seen.add(text)
            context = span_context_of(text)
            if context is not None:
                links.append(Link(context))
    return links
