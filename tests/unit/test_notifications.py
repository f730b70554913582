"""What a process does when told of another's commits (service/notifications.py):
each new position advances the head and wakes the worker once; a position
told again (a front repeating what its writer process said first) wakes
nothing; an unsaid one (None) is read and always wakes."""

from __future__ import annotations

import asyncio
from typing import Any

from service.backends import Local
from service.notifications import notifications
from service.positions import PositionWatch


class Worker:
    def __init__(self) -> None:
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1


class Events:
    def head(self) -> int:
        return 9  # what a read of the store says


class Backend:
    def __init__(self) -> None:
        self.on_events: Any = None

    def notifications(self, events: object, **kwargs: Any) -> None:
        self.on_events = kwargs["on_events"]


class Container:
    def __init__(self) -> None:
        self.events, self.models, self.backend = Events(), object(), Backend()


def test_a_position_told_again_wakes_nothing() -> None:
    async def run() -> tuple[list[int], list[int]]:
        loop = asyncio.get_running_loop()
        local = Local(frozenset({"worker"}), PositionWatch(loop), PositionWatch(loop))
        container, worker = Container(), Worker()
        notifications(container, local, worker, True)  # type: ignore[arg-type]
        on_events = container.backend.on_events
        wakes, heads = [], []
        for told in (5, 5, 4, 6, None, 6):
            on_events(told)
            await asyncio.sleep(0)  # the head advances on the loop
            wakes.append(worker.wakes)
            heads.append(local.head.position)
        return wakes, heads

    wakes, heads = asyncio.run(run())
    # 5 wakes; 5 again and 4 (older) do not; 6 does; None reads the store
    # (9) and wakes; 6 after that does not.
    assert wakes == [1, 1, 1, 2, 3, 3]
    assert heads == [5, 5, 5, 6, 9, 9]
