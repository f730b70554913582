"""PositionWatch: every wait leaves the waiting structure when it ends."""

from __future__ import annotations

import asyncio
import gc
import random
import sys

import pytest

from service.positions import PositionWatch
from testkit.procs import rss_bytes

MB = 1 << 20


def test_reached_timed_out_and_cancelled_waits_all_leave() -> None:
    async def main() -> None:
        watch = PositionWatch(asyncio.get_running_loop())
        reached = asyncio.ensure_future(watch.wait_for(5, None))
        cancelled = asyncio.ensure_future(watch.wait_for(7, None))
        await asyncio.sleep(0)
        assert await watch.wait_for(10**15, 0.001) is False
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        watch.advance(6)
        assert await reached is True
        assert watch.waiting == 0 and watch.position == 6
        assert await watch.wait_for(3, 0) is True  # already reached

    asyncio.run(main())


def test_mixed_waits_in_random_order_are_answered_and_forgotten() -> None:
    """Stale entries are dropped lazily; whatever is still waiting is answered
    when its position comes, and nothing is answered early."""
    rng = random.Random(17)

    async def main() -> None:
        watch = PositionWatch(asyncio.get_running_loop())
        tasks = {
            asyncio.ensure_future(watch.wait_for(p, None)): p
            for p in (rng.randrange(1, 500) for _ in range(2000))
        }
        await asyncio.sleep(0)
        doomed = rng.sample(sorted(tasks, key=id), 1500)
        for t in doomed:
            t.cancel()
        await asyncio.gather(*doomed, return_exceptions=True)
        assert watch.waiting <= 2 * (len(tasks) - len(doomed))
        alive = [t for t in tasks if t not in doomed]
        watch.advance(250)
        for _ in range(3):  # the call_soon_threadsafe, then the wake-ups
            await asyncio.sleep(0)
        for t in alive:
            assert t.done() == (tasks[t] <= 250)
        watch.advance(500)
        assert all(await asyncio.gather(*alive))
        assert watch.waiting == 0

    asyncio.run(main())


@pytest.mark.slow  # ~10 s: 200,000 waits
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_100k_timed_out_and_cancelled_waits_leave_nothing_behind() -> None:
    """A client retrying an unreachable min_position in a tight loop, and
    followers that go away: the waiting list ends empty and memory flat."""

    async def timed_out(watch: PositionWatch, n: int) -> None:
        for _ in range(n):
            assert await watch.wait_for(10**15, 0) is False

    async def cancelled(watch: PositionWatch, n: int) -> None:
        for _ in range(n // 10_000):
            waits = [
                asyncio.ensure_future(watch.wait_beyond(10**15, 60))
                for _ in range(10_000)
            ]
            await asyncio.sleep(0)
            for w in waits:
                w.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def main() -> tuple[int, int]:
        watch = PositionWatch(asyncio.get_running_loop())
        await timed_out(watch, 10_000)  # warms the allocator up
        await cancelled(watch, 10_000)
        gc.collect()
        start = rss_bytes()
        await timed_out(watch, 100_000)
        assert watch.waiting == 0
        await cancelled(watch, 100_000)
        assert watch.waiting == 0
        gc.collect()
        return start, rss_bytes()

    start, end = asyncio.run(main())
    print(
        f"RSS before {start / MB:.1f} MB, after 100,000 timed-out and "
        f"100,000 cancelled waits {end / MB:.1f} MB"
    )
    # A kept waiter costs ~300 bytes: 200,000 of them would be ~60 MB.
    assert end - start < 8 * MB
