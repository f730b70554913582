"""Waiting for positions without polling: read-your-writes and live streams.

Positions are pushed in (by the worker thread in-process, or by a LISTEN
thread across processes) with `advance`, which is thread-safe; coroutines
wait with `wait_for`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class PositionWatch:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.position = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def advance(self, position: int) -> None:
        """Thread-safe: record that `position` has been reached."""
        self._loop.call_soon_threadsafe(self._advance, position)

    def _advance(self, position: int) -> None:
        if position > self.position:
            self.position = position
        while self._waiters and self._waiters[0][0] <= self.position:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(None)

    async def wait_for(self, position: int, timeout: float | None) -> bool:
        """True once `position` is reached, False if `timeout` ran out first."""
        if self.position >= position:
            return True
        future: asyncio.Future[None] = self._loop.create_future()
        heapq.heappush(self._waiters, (position, next(self._seq), future))
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return False
        return True

    async def wait_beyond(self, position: int, timeout: float | None) -> bool:
        return await self.wait_for(position + 1, timeout)
