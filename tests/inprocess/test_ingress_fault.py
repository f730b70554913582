"""A fault of ours in the ingress: 500, counted as outcome `error` (the
alert on 5xx answers reads it), one error line without the fault's text.
A store that hangs rather than fails: Sanic's 503 after the timeout, counted
and logged as `unavailable` like the store's own."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx
import structlog

from service.eventstore import Appended
from service.ingest import Envelope
from service.metrics import Metrics
from service.webhook import Ingress, create_app
from testkit.sanic_thread import serving
from testkit.signing import SECRET, headers
from testkit.webhooks import WEBHOOK_PATH, webhook_body

CANARY = "someone.private@example.com"


def ingress(submit: object, metrics: Metrics, timeout: float = 5) -> Ingress:
    def quarantine(reason: str, hdrs: Mapping[str, str], body: bytes) -> int:
        raise AssertionError("nothing to quarantine")

    async def ready() -> dict[str, bool]:
        return {"store": True}

    return Ingress(
        secrets=(SECRET.encode(),),
        max_body_bytes=65_536,
        max_header_bytes=8192,
        max_id_length=256,
        request_timeout=timeout,
        keep_alive_timeout=timeout,
        submit=submit,  # type: ignore[arg-type]
        quarantine=quarantine,
        ready=ready,
        metrics=metrics,
        access_log_limit=10,
    )


def test_a_fault_is_a_500_counted_and_logged_without_its_text() -> None:
    async def submit(envelope: Envelope) -> Appended:
        raise RuntimeError(f"a bug holding {CANARY}")

    metrics = Metrics()
    app = create_app(ingress(submit, metrics))
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


def test_a_hung_store_is_a_503_counted_as_unavailable() -> None:
    async def submit(envelope: Envelope) -> Appended:
        await asyncio.sleep(30)  # a store that never answers
        raise AssertionError("unreachable")

    metrics = Metrics()
    app = create_app(ingress(submit, metrics, timeout=0.5))
    body = webhook_body("hung-1", "hung-c")
    with structlog.testing.capture_logs() as logged, serving(app) as port:
        answer = httpx.post(
            f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
            content=body,
            headers=headers(body, "Balance changed"),
            timeout=10,
        )
    assert answer.status_code == 503
    (line,) = [x for x in logged if x["event"] == "webhook refused"]
    assert line["outcome"] == "unavailable" and line["status"] == 503
    outcome = {"event_type": "-", "outcome": "unavailable"}
    assert metrics.registry.get_sample_value("loyalty_webhooks_total", outcome) == 1
