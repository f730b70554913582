"""Waiting for positions without polling: read-your-writes and live streams.

Positions are pushed in (by the worker thread in-process, or by a LISTEN
thread across processes) with `advance`, which is thread-safe; coroutines
wait with `wait_for`.

Every wait leaves the waiting structure when it ends, however it ends
(reached, timed out, cancelled because the client went away): a client that
retries an unreachable position in a loop must not grow the process.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable


class PositionWatch:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.position = 0
        # A heap ordered by position. A wait that ends unreached cannot be
        # taken out of the middle of a heap cheaply, so it is counted as stale
        # and the heap is rebuilt without the stale entries once they are
        # more than half of it: amortised O(log n) per wait, and the heap
        # never holds more than twice the live waits (none when none wait).
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._stale = 0
        self._seq = itertools.count()
        self._followers: list[Callable[[int], None]] = []

    @property
    def waiting(self) -> int:
        """Entries in the waiting structure (live waits and not yet dropped
        stale ones): zero when nothing waits."""
        return len(self._waiters)

    def follow(self, callback: Callable[[int], None]) -> None:
        """Call `callback(position)` on the loop each time the position grows
        (to tell other processes; it must not block)."""
        self._followers.append(callback)

    def advance(self, position: int) -> None:
        """Thread-safe: record that `position` has been reached."""
        self._loop.call_soon_threadsafe(self._advance, position)

    def _advance(self, position: int) -> None:
        if position > self.position:
            self.position = position
            for callback in self._followers:
                callback(position)
        while self._waiters and self._waiters[0][0] <= self.position:
            _, _, future = heapq.heappop(self._waiters)
            if future.done():  # ended unreached, already counted stale
                self._stale -= 1
            else:
                future.set_result(None)

    def _forget(self) -> None:
        """One entry of the heap has ended unreached."""
        self._stale += 1
        if 2 * self._stale > len(self._waiters):
            self._waiters = [w for w in self._waiters if not w[2].done()]
            heapq.heapify(self._waiters)
            self._stale = 0

    async def wait_for(self, position: int, timeout: float | None) -> bool:
        """True once `position` is reached, False if `timeout` ran out first.
        Cancellation propagates; the wait is removed in every case."""
        if self.position >= position:
            return True
        future: asyncio.Future[None] = self._loop.create_future()
        heapq.heappush(self._waiters, (position, next(self._seq), future))
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            return False
        finally:
            if not future.done():
                future.cancel()
            if future.cancelled():  # still in the heap: `_advance` never took it
                self._forget()
        return True

    async def wait_beyond(self, position: int, timeout: float | None) -> bool:
        return await self.wait_for(position + 1, timeout)
