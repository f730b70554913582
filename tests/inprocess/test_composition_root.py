"""The composition root and the runtime in this process: which parts each
role gets, and roles served on a free port with a part replaced."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from service.bootstrap import ALL_ROLES, Container, build_service
from service.ingest import parse_envelope
from service.runtime import Bound, serve
from testkit.webhooks import webhook_body


@pytest.mark.parametrize(
    ("roles", "parts"),
    [
        # A process without every role hears the others' commits (on SQLite
        # by datagrams); one with every role has nobody to hear.
        ({"ingress"}, {"committer", "app", "listener"}),
        ({"worker"}, {"worker", "listener"}),
        ({"api"}, {"api", "listener"}),
        # The store's writer process: a committer and its server, no app.
        ({"writer"}, {"committer", "writer", "listener"}),
        (set(ALL_ROLES), {"committer", "app", "worker", "api"}),
    ],
)
def test_each_role_gets_its_parts_and_no_others(
    container: Container, roles: set[str], parts: set[str]
) -> None:
    container.settings = replace(container.settings, http_port=0, grpc_port=0)

    async def built() -> set[str]:
        service = build_service(container, frozenset(roles))
        names = {"committer", "app", "worker", "api", "listener", "writer"}
        have = {name for name in names if getattr(service, name) is not None}
        if service.api is not None:  # bound, not started: release the port
            await service.api.server.stop(None)  # type: ignore[attr-defined]
        if service.listener is not None:
            service.listener.stop()
        return have

    assert asyncio.run(built()) == parts


class Refused:
    """A lease never granted: a standby worker that must not apply."""

    def __init__(self) -> None:
        self.asked = 0

    def acquire(self) -> bool:
        self.asked += 1
        return False

    def release(self) -> None:
        pass


def test_served_with_the_lease_replaced_the_worker_stands_by_and_stops_cleanly(
    container: Container,
) -> None:
    # Worker and API only: serving Sanic in this process would change Sanic's
    # class-wide state under the test client the other in-process tests use.
    container.settings = replace(container.settings, grpc_port=0)
    body = webhook_body("e1", "c1", amount=5)
    container.events.append([parse_envelope(body, "Balance changed")])
    lease = Refused()

    async def scenario() -> tuple[int, int, int | None]:
        stop = asyncio.Event()
        bound: asyncio.Future[Bound] = asyncio.get_running_loop().create_future()
        service = build_service(container, frozenset({"worker", "api"}), lease=lease)
        serving = asyncio.create_task(
            serve(service, stop=stop, on_ready=bound.set_result)
        )
        port = (await asyncio.wait_for(bound, 30)).grpc_port
        while lease.asked < 2:  # the worker asked, was refused, asked again
            await asyncio.sleep(0.05)
        head, applied = service.head.position, service.applied.position
        stop.set()
        await asyncio.wait_for(serving, 30)
        return head, applied, port

    head, applied, port = asyncio.run(scenario())
    assert (head, applied) == (1, 0)  # stored, and nobody applied it
    assert port
    assert container.models.applied_position() == 0
