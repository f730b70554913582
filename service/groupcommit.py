"""Group commit: concurrent webhooks share one store transaction.

Each request awaits its own future; one writer task drains whatever has
queued up while the previous transaction was committing and appends it as a
single batch on a worker thread (the library is synchronous). Nothing is
answered before its batch has committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from service.eventstore import Appended, StoreUnavailable
from service.ingest import Envelope

log = logging.getLogger(__name__)

AppendBatch = Callable[[Sequence[Envelope]], list[Appended]]


class GroupCommitter:
    def __init__(
        self,
        append: AppendBatch,
        *,
        max_batch: int = 512,
        on_commit: Callable[[list[Appended]], None] | None = None,
    ) -> None:
        self._append = append
        self._max_batch = max_batch
        self._on_commit = on_commit
        # A deque and one wake-up future, not an asyncio.Queue: the queue's
        # loop checks and waiter bookkeeping showed in the ingest profile
        # (docs/performance.md, "Why the code is shaped this way"),
        # and there is exactly one consumer to wake.
        self._pending: deque[tuple[Envelope, asyncio.Future[Appended]]] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        # One thread: batches commit in order and never compete for the lock.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="group-commit")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=True)

    async def submit(self, envelope: Envelope) -> Appended:
        """Resolves once the envelope's batch is durably committed."""
        if self._task is None or self._task.done():
            raise StoreUnavailable("the writer is not running")
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self._pending.append((envelope, future))  # unbounded: never waits
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        pending = self._pending
        while True:
            if not pending:
                self._wakeup = loop.create_future()
                await self._wakeup
                self._wakeup = None
            batch = [
                pending.popleft() for _ in range(min(len(pending), self._max_batch))
            ]
            envelopes = [env for env, _ in batch]
            try:
                answers = await loop.run_in_executor(
                    self._executor, self._append, envelopes
                )
            except Exception as e:
                if isinstance(e, StoreUnavailable):
                    error = e
                else:
                    # Not the store's own refusal: a fault worth its own line
                    # (each request is answered 503 with the cause).
                    log.warning("appending a batch failed: %s", type(e).__name__)
                    error = StoreUnavailable(e)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), answer in zip(batch, answers, strict=True):
                if not future.done():
                    future.set_result(answer)
            if self._on_commit is not None:
                self._on_commit(answers)
