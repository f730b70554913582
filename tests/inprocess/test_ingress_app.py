"""The Sanic app in this process (Sanic's test client): the status answered
for each outcome, over a real SQLite store behind a real group committer,
with the store or the quarantine replaced where a test needs them down."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest
from sanic import Sanic

from service.bootstrap import Container
from service.eventstore import Appended, StoreUnavailable
from service.groupcommit import GroupCommitter
from service.ingest import Envelope
from service.webhook import Ingress, create_app
from testkit.signing import headers, sign
from testkit.webhooks import WEBHOOK_PATH, webhook_body

MAX_BODY = 2000


def app_for(
    container: Container,
    *,
    submit: Callable[[Envelope], Awaitable[Appended]] | None = None,
    quarantine: Callable[[str, Mapping[str, str], bytes], int] | None = None,
    checks: dict[str, bool] | None = None,
) -> Sanic:  # type: ignore[type-arg]
    running: dict[str, GroupCommitter] = {}

    async def committed(envelope: Envelope) -> Appended:
        return await running["committer"].submit(envelope)

    async def ready() -> dict[str, bool]:
        return checks if checks is not None else {"store": True}

    app = create_app(
        Ingress(
            secrets=(b"old-secret", b"test-secret"),
            max_body_bytes=MAX_BODY,
            max_header_bytes=8192,
            max_id_length=256,
            request_timeout=5.0,
            keep_alive_timeout=5.0,
            submit=submit or committed,
            quarantine=quarantine or container.quarantine.add,
            ready=ready,
            metrics=container.metrics,
        )
    )

    # The test client starts a server per request: a committer for each.
    @app.before_server_start
    async def start(_: Sanic) -> None:  # type: ignore[type-arg]
        running["committer"] = GroupCommitter(container.events.append)
        running["committer"].start()

    @app.after_server_stop
    async def stop(_: Sanic) -> None:  # type: ignore[type-arg]
        await running.pop("committer").stop()

    return app


def post(app: Sanic, body: bytes, hdrs: dict[str, str]) -> tuple[int, Any]:  # type: ignore[type-arg]
    _, answer = app.test_client.post(WEBHOOK_PATH, content=body, headers=hdrs)
    return answer.status, json.loads(answer.body)


def test_accepted_then_duplicate_with_the_same_position(container: Container) -> None:
    app = app_for(container)
    body = webhook_body("a1", "c1", amount=5)
    assert post(app, body, headers(body, "Balance changed")) == (
        200,
        {"status": "accepted", "position": 1},
    )
    assert post(app, body, headers(body, "balance_changed")) == (
        200,
        {"status": "duplicate", "position": 1},
    )
    assert [e.id for e in container.events.read(0, 10)] == ["a1"]


def test_any_secret_of_a_rotation_is_accepted(container: Container) -> None:
    app = app_for(container)
    body = webhook_body("r1")
    status, _ = post(app, body, headers(body, "Wallet click", "old-secret"))
    assert status == 200


@pytest.mark.parametrize(
    "signature",
    [None, "", sign(b"another body"), sign(webhook_body("s1"), "wrong-secret")],
)
def test_bad_signature_is_401_and_nothing_is_kept(
    container: Container, signature: str | None
) -> None:
    app = app_for(container)
    body = webhook_body("s1")
    hdrs = headers(body, "Balance changed")
    del hdrs["x-jericommerce-hmac-sha256"]
    if signature is not None:
        hdrs["x-jericommerce-hmac-sha256"] = signature
    assert post(app, body, hdrs) == (401, {"error": "unauthorized"})
    assert container.events.head() == 0
    assert container.quarantine.count() == 0


def test_signed_but_invalid_is_400_and_quarantined(container: Container) -> None:
    app = app_for(container)
    body = b'{"id": "q1", "customerId": "c1"}'
    status, answer = post(app, body, headers(body, "Balance changed"))
    assert (status, answer) == (400, {"error": "createdAt is missing"})
    assert container.events.head() == 0
    (kept,) = container.quarantine.list()
    assert (kept.reason, kept.body) == ("createdAt is missing", body)
    assert kept.headers["x-jericommerce-event-type"] == "Balance changed"


def test_too_large_is_413_before_anything_else(container: Container) -> None:
    app = app_for(container)
    body = webhook_body("big", padding="x" * MAX_BODY)
    status, _ = post(app, body, headers(body, "Balance changed"))
    assert status == 413
    assert container.events.head() == 0
    assert container.quarantine.count() == 0


def test_store_down_is_503_and_the_sender_retries(container: Container) -> None:
    async def down(envelope: Envelope) -> Appended:
        raise StoreUnavailable("database is down")

    app = app_for(container, submit=down)
    body = webhook_body("u1")
    assert post(app, body, headers(body, "Balance changed")) == (
        503,
        {"error": "store unavailable, retry"},
    )


def test_quarantine_down_is_503_not_400(container: Container) -> None:
    def down(reason: str, hdrs: Mapping[str, str], body: bytes) -> int:
        raise StoreUnavailable("database is down")

    app = app_for(container, quarantine=down)
    body = b"not json"
    assert post(app, body, headers(body, "Balance changed"))[0] == 503


def test_health_readiness_and_metrics(container: Container) -> None:
    app = app_for(container)
    _, alive = app.test_client.get("/healthz")
    assert (alive.status, alive.json) == (200, {"status": "alive"})
    _, ready = app.test_client.get("/readyz")
    assert (ready.status, ready.json["status"]) == (200, "ready")

    down = app_for(container, checks={"store": False})
    _, not_ready = down.test_client.get("/readyz")
    assert not_ready.status == 503
    assert not_ready.json == {"status": "not ready", "checks": {"store": False}}

    body = webhook_body("m1")
    post(app, body, headers(body, "Balance changed"))
    post(app, body, {"x-jericommerce-event-type": "Balance changed"})
    _, metrics = app.test_client.get("/metrics")
    text = metrics.body.decode()
    assert metrics.status == 200
    for outcome in (
        'event_type="BALANCE_CHANGED",outcome="accepted"',
        'event_type="-",outcome="bad_signature"',
    ):
        line = next(x for x in text.splitlines() if outcome in x)
        assert line.endswith(" 1.0")
