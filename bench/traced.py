"""Tracing on, for P1 and P2: the service exports every span over OTLP/HTTP
at the default sampler (parent-based, always on) and the default batch
processor, to a receiver in the bench process (on the load generators'
core), as it would to a collector."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import procs
from bench.context import Context
from testkit.otlp import OtlpReceiver


def otel_env(receiver: OtlpReceiver) -> dict[str, str]:
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.http_endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": "loyalty-bench",
    }


@contextmanager
def receiving() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def spans_note(receiver: OtlpReceiver) -> str:
    spans = receiver.collected.spans()
    return f"{len(spans):,} spans received in {receiver.collected.requests:,} exports"


@contextmanager
def service(
    ctx: Context, name: str, data_dir: Path
) -> Iterator[tuple[procs.Server, OtlpReceiver] | None]:
    """`python -m service run` with tracing on and its receiver, or None
    when the run was asked for without tracing (--no-tracing)."""
    if not ctx.tracing:
        yield None
        return
    logs = ctx.out / "logs"
    with (
        receiving() as receiver,
        procs.start_service(
            data_dir, ctx.server_core, logs, name, otel_env(receiver)
        ) as server,
    ):
        yield server, receiver
