"""A fault of ours in the ingress: 500, counted as outcome `error` (the
alert on 5xx answers reads it), one error line without the fault's text."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import structlog

from service.eventstore import Appended
from service.ingest import Envelope
from service.metrics import Metrics
from service.webhook import Ingress, create_app
from testkit.signing import SECRET, headers
from testkit.webhooks import WEBHOOK_PATH, webhook_body

CANARY = "someone.private@example.com"


def test_a_fault_is_a_500_counted_and_logged_without_its_text() -> None:
    async def submit(envelope: Envelope) -> Appended:
        raise RuntimeError(f"a bug holding {CANARY}")

    def quarantine(reason: str, hdrs: Mapping[str, str], body: bytes) -> int:
        raise AssertionError("nothing to quarantine")

    async def ready() -> dict[str, bool]:
        return {"store": True}

    metrics = Metrics()
    app = create_app(
        Ingress(
            secrets=(SECRET.encode(),),
            max_body_bytes=65_536,
            max_header_bytes=8192,
            max_id_length=256,
            request_timeout=5,
            keep_alive_timeout=5,
            submit=submit,
            quarantine=quarantine,
            ready=ready,
            metrics=metrics,
            access_log_limit=10,
        )
    )
    body = webhook_body("fault-1", "fault-c", email=CANARY)

    async def post() -> tuple[int, object]:
        _, answer = await app.asgi_client.post(
            WEBHOOK_PATH, content=body, headers=headers(body, "Balance changed")
        )
        return answer.status, answer.json

    with structlog.testing.capture_logs() as logged:
        assert asyncio.run(post()) == (500, {"error": "internal error"})
    assert CANARY not in repr(logged)
    errors = [line for line in logged if line["log_level"] == "error"]
    assert [line["event"] for line in errors] == [
        "answering 500: a fault in the ingress"
    ]
    assert errors[0]["error"] == "RuntimeError"
    (access,) = [line for line in logged if line["event"] == "http request"]
    assert access["status"] == 500 and access["request_id"] == errors[0]["request_id"]
    outcome = {"event_type": "-", "outcome": "error"}
    assert metrics.registry.get_sample_value("loyalty_webhooks_total", outcome) == 1
