"""The composition root and the runtime in this process: which parts each
role gets, and the service served on free ports with a part replaced."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

import httpx
import pytest

from service.bootstrap import ALL_ROLES, Container, build_service
from service.eventstore import Appended, StoreUnavailable
from service.ingest import Envelope
from service.runtime import Bound, serve
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH, webhook_body


@pytest.mark.parametrize(
    ("roles", "parts"),
    [
        ({"ingress"}, {"committer", "app"}),
        ({"worker"}, {"worker"}),
        ({"api"}, {"api"}),
        (set(ALL_ROLES), {"committer", "app", "worker", "api"}),
    ],
)
def test_each_role_gets_its_parts_and_no_others(
    container: Container, roles: set[str], parts: set[str]
) -> None:
    container.settings = replace(container.settings, http_port=0, grpc_port=0)

    async def built() -> set[str]:
        service = build_service(container, frozenset(roles))
        names = {"committer", "app", "worker", "api", "listener"}
        have = {name for name in names if getattr(service, name) is not None}
        if service.api is not None:  # bound, not started: release the port
            await service.api.server.stop(None)  # type: ignore[attr-defined]
        return have

    assert asyncio.run(built()) == parts


def test_served_with_the_append_replaced_a_webhook_gets_503_and_stops_cleanly(
    container: Container,
) -> None:
    def store_down(envelopes: Sequence[Envelope]) -> list[Appended]:
        raise StoreUnavailable("replaced by the test")

    container.settings = replace(container.settings, http_port=0, grpc_port=0)

    async def scenario() -> tuple[int, int, int]:
        stop = asyncio.Event()
        bound: asyncio.Future[Bound] = asyncio.get_running_loop().create_future()
        service = build_service(container, ALL_ROLES, append=store_down)
        serving = asyncio.create_task(
            serve(service, stop=stop, on_ready=bound.set_result)
        )
        port = (await asyncio.wait_for(bound, 30)).http_port
        body = webhook_body("e1", "c1", amount=5)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            answer = await http.post(
                WEBHOOK_PATH, content=body, headers=headers(body, "Balance changed")
            )
            ready = await http.get("/readyz")
        stop.set()
        await asyncio.wait_for(serving, 30)
        return answer.status_code, ready.status_code, container.events.head()

    assert asyncio.run(scenario()) == (503, 200, 0)
