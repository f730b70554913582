"""The SQLite processes' notification link (service/backends/sqlite/notify.py):
datagrams heard, bursts coalesced, silence polled, strangers ignored, and
the backend wiring a front's commits to a projector and back."""

from __future__ import annotations

import asyncio
import queue
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from service.backends import Applied, Local
from service.backends.sqlite.backend import SqliteBackend
from service.backends.sqlite.notify import APPLIED, EVENTS, Link, address, drain
from service.positions import PositionWatch

Heard = "queue.Queue[tuple[str, int | None]]"


@pytest.fixture
def started() -> Iterator[Callable[[Link], Link]]:
    links: list[Link] = []

    def start(link: Link) -> Link:
        links.append(link)
        link.start()
        assert link.bound.wait(5)
        return link

    yield start
    for link in links:
        link.stop()


@pytest.fixture
def sender() -> Iterator[Callable[[Path], Link]]:
    """A sending link for a data dir, closed at the end."""
    links: dict[Path, Link] = {}

    def get(data_dir: Path) -> Link:
        if data_dir not in links:
            links[data_dir] = Link(data_dir, {})
        return links[data_dir]

    yield get
    for link in links.values():
        link.stop()


def listener(
    data_dir: Path, heard: queue.Queue[tuple[str, int | None]], *channels: str
) -> Link:
    def on(channel: str) -> Callable[[int | None], None]:
        return lambda position: heard.put((channel, position))

    return Link(data_dir, {c: on(c) for c in channels}, poll_interval=30)


def test_a_datagram_is_heard_with_its_position(
    tmp_path: Path, started: Callable[[Link], Link], sender: Callable[[Path], Link]
) -> None:
    heard: queue.Queue[tuple[str, int | None]] = queue.Queue()
    started(listener(tmp_path, heard, EVENTS, APPLIED))
    link = sender(tmp_path)
    link.send(EVENTS, 7)
    assert heard.get(timeout=5) == (EVENTS, 7)
    link.send(APPLIED, 9)
    assert heard.get(timeout=5) == (APPLIED, 9)
    assert link.sent == 2 and link.dropped == 0


def test_a_burst_is_one_position_the_highest(
    tmp_path: Path, sender: Callable[[Path], Link]
) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address(tmp_path, EVENTS))
        sock.setblocking(False)
        for position in [3, 50, 7, 49]:
            sender(tmp_path).send(EVENTS, position)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as stranger:
            stranger.sendto(b"not a position", address(tmp_path, EVENTS))
        assert drain(sock) == 50
        assert drain(sock) is None  # drained


def test_sending_with_nobody_listening_is_harmless(
    tmp_path: Path, sender: Callable[[Path], Link]
) -> None:
    link = sender(tmp_path)
    link.send(EVENTS, 1)
    assert (link.sent, link.dropped) == (0, 1)


def test_silence_reads_the_database(
    tmp_path: Path, started: Callable[[Link], Link]
) -> None:
    heard: queue.Queue[tuple[str, int | None]] = queue.Queue()
    started(Link(tmp_path, {APPLIED: lambda p: heard.put((APPLIED, p))}, 0.05))
    assert heard.get(timeout=5) == (APPLIED, None)


def test_a_second_listener_of_a_channel_polls_instead(
    tmp_path: Path, started: Callable[[Link], Link], sender: Callable[[Path], Link]
) -> None:
    first: queue.Queue[tuple[str, int | None]] = queue.Queue()
    second: queue.Queue[tuple[str, int | None]] = queue.Queue()
    started(listener(tmp_path, first, APPLIED))
    started(Link(tmp_path, {APPLIED: lambda p: second.put((APPLIED, p))}, 0.05))
    assert second.get(timeout=5) == (APPLIED, None)
    sender(tmp_path).send(APPLIED, 4)
    assert first.get(timeout=5) == (APPLIED, 4)


def test_another_data_dir_is_another_deployment(
    tmp_path: Path, started: Callable[[Link], Link], sender: Callable[[Path], Link]
) -> None:
    heard: queue.Queue[tuple[str, int | None]] = queue.Queue()
    started(listener(tmp_path / "a", heard, EVENTS))
    sender(tmp_path / "b").send(EVENTS, 1)
    sender(tmp_path / "a").send(EVENTS, 2)
    assert heard.get(timeout=5) == (EVENTS, 2)
    assert heard.empty()


def test_a_failing_callback_does_not_stop_the_link(
    tmp_path: Path, started: Callable[[Link], Link], sender: Callable[[Path], Link]
) -> None:
    heard: list[int | None] = []

    def on(position: int | None) -> None:
        heard.append(position)
        if len(heard) == 1:
            raise RuntimeError("boom")

    link = started(Link(tmp_path, {EVENTS: on}, poll_interval=30))
    # Datagrams may coalesce into one callback: send until heard twice.
    for position in range(1, 200):
        if len(heard) >= 2:
            break
        sender(tmp_path).send(EVENTS, position)
        time.sleep(0.02)
    assert len(heard) >= 2 and link._thread.is_alive()


def test_one_process_needs_no_link(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path)

    async def build() -> object:
        loop = asyncio.get_running_loop()
        local = Local(
            frozenset({"ingress", "worker", "api"}),
            PositionWatch(loop),
            PositionWatch(loop),
        )
        return backend.notifications(
            None,  # type: ignore[arg-type]
            on_events=lambda _: None,
            on_applied=lambda _: None,
            local=local,
        )

    assert asyncio.run(build()) is None


@pytest.mark.parametrize(
    "front_roles",
    [
        pytest.param(frozenset({"ingress", "api"}), id="run-split-front"),
        # An API process of its own appends only erasures' records.
        pytest.param(frozenset({"api"}), id="api-alone"),
    ],
)
def test_front_commits_wake_the_projector_and_applied_reaches_the_front(
    tmp_path: Path, front_roles: frozenset[str]
) -> None:
    """The wiring `build_service` gets: the front's head advancing reaches
    the projector's on_events; the projector's applied position advancing
    reaches the front's on_applied (as None: read the database)."""
    backend = SqliteBackend(tmp_path)
    woken: queue.Queue[str] = queue.Queue()
    told: queue.Queue[Applied | None] = queue.Queue()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        front = Local(front_roles, PositionWatch(loop), PositionWatch(loop))
        projector = Local(
            frozenset({"worker"}), PositionWatch(loop), PositionWatch(loop)
        )
        links = [
            backend.notifications(
                None,  # type: ignore[arg-type]
                on_events=lambda _: woken.put("front"),  # never: it has no worker
                on_applied=told.put,
                local=front,
            ),
            backend.notifications(
                None,  # type: ignore[arg-type]
                # The position said: a datagram, not the link's poll (None).
                on_events=lambda position: woken.put(f"projector at {position}"),
                on_applied=lambda _: woken.put("applied at the projector"),
                local=projector,
            ),
        ]
        for link in links:
            assert isinstance(link, Link)
            link.start()
            assert link.bound.wait(5)
        try:
            front.head.advance(5)
            heard = await asyncio.to_thread(woken.get, timeout=5)
            assert heard == "projector at 5"
            projector.applied.advance(5)
            assert await asyncio.to_thread(told.get, timeout=5) is None
            assert woken.empty()
        finally:
            for link in links:
                assert isinstance(link, Link)
                link.stop()

    asyncio.run(run())
