"""Prometheus metrics, one registry per running service (no global state)."""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

# Events a transaction: the group commit's and the projections' batches on
# one scale, so their histograms compare bucket for bucket.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.webhooks = Counter(
            "loyalty_webhooks",
            "Webhook requests by event type and outcome.",
            ["event_type", "outcome"],
            registry=r,
        )
        self.append_seconds = Histogram(
            "loyalty_append_seconds",
            "Time from a webhook being queued to its batch being committed.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5),
            registry=r,
        )
        self.batch_size = Histogram(
            "loyalty_append_batch_size",
            "Webhooks committed per store transaction (group commit).",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.projection_batch_size = Histogram(
            "loyalty_projection_batch_size",
            "Events the projections applied per read-model transaction.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.applied_position = Gauge(
            "loyalty_projection_applied_position",
            "Highest global position the projections have applied.",
            multiprocess_mode="max",
            registry=r,
        )
        self.head_position = Gauge(
            "loyalty_event_store_head_position",
            "Highest global position in the event store.",
            multiprocess_mode="max",
            registry=r,
        )
        self.lag_events = Gauge(
            "loyalty_projection_lag_events",
            "Events stored but not yet applied to the read models.",
            multiprocess_mode="max",
            registry=r,
        )
        self.lag_seconds = Gauge(
            "loyalty_projection_lag_seconds",
            "Seconds since the projections were last caught up with the head.",
            multiprocess_mode="max",
            registry=r,
        )
        self.quarantine_open = Gauge(
            "loyalty_quarantine_open",
            "Quarantined requests not yet re-processed.",
            multiprocess_mode="max",
            registry=r,
        )
        self.dead_letters = Gauge(
            "loyalty_projection_dead_letters",
            "Events the folds could not apply (see the dead-letters command).",
            multiprocess_mode="max",
            registry=r,
        )
        self.rebuild_failures = Counter(
            "loyalty_rebuild_failures",
            "Rebuilds of the read models that failed (why: GetProjectionStatus "
            "last_rebuild_error, and the log).",
            registry=r,
        )
        self.rebuild_failed = Gauge(
            "loyalty_rebuild_last_failed",
            "1 while the last rebuild this process ran has failed, else 0.",
            multiprocess_mode="max",
            registry=r,
        )
        self.quarantined = Counter(
            "loyalty_quarantined_requests",
            "Signed but invalid webhooks kept in the quarantine.",
            registry=r,
        )
        self.grpc_requests = Counter(
            "loyalty_grpc_requests",
            "gRPC calls by method and status code.",
            ["method", "code"],
            registry=r,
        )
        self.grpc_streams_open = Gauge(
            "loyalty_grpc_streams_open",
            "Server-streaming gRPC calls (StreamEvents, health Watch) open now.",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.position_waits = Gauge(
            "loyalty_grpc_position_waits",
            "Calls and followers waiting for a position (min_position, follow).",
            ["watch"],
            multiprocess_mode="livesum",
            registry=r,
        )
        self.grpc_seconds = Histogram(
            "loyalty_grpc_seconds",
            "gRPC call latency by method.",
            ["method"],
            registry=r,
        )

        self.lease_held = Gauge(
            "loyalty_worker_lease_held",
            "1 in the worker process that holds the lease and applies, 0 "
            "elsewhere (a standby, a process without the worker).",
            multiprocess_mode="max",
            registry=r,
        )
        self.ready = Gauge(
            "loyalty_ready",
            "Readiness checks as /readyz answers them: 1 passing, 0 failing.",
            ["check"],
            # A dead child's last value must not count (ingress --workers N).
            multiprocess_mode="livemin",
            registry=r,
        )

    def summary(self) -> dict[str, object]:
        """This process's totals, for its shutdown line: webhooks by outcome,
        gRPC calls by code, quarantined requests."""
        webhooks: dict[str, int] = {}
        calls: dict[str, int] = {}
        for metric in self.registry.collect():
            for sample in metric.samples:
                if sample.name == "loyalty_webhooks_total":
                    key = sample.labels["outcome"]
                    webhooks[key] = webhooks.get(key, 0) + int(sample.value)
                elif sample.name == "loyalty_grpc_requests_total":
                    key = sample.labels["code"]
                    calls[key] = calls.get(key, 0) + int(sample.value)
        quarantined = self.registry.get_sample_value(
            "loyalty_quarantined_requests_total"
        )
        return {
            "webhooks": webhooks,
            "grpc_calls": calls,
            "quarantined": int(quarantined or 0),
        }

    def exposition(self) -> bytes:
        """The text format. Under `ingress --workers N` the children share one
        port, so each scrape would see one child at random; there the
        children write to PROMETHEUS_MULTIPROC_DIR and any of them answers
        for all (prometheus-client's multiprocess mode)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
