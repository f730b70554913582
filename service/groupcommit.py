"""Group commit: concurrent webhooks share one store transaction.

Each request awaits its own future; one writer task drains whatever has
queued up while the previous transaction was committing and appends it as a
single batch on a worker thread (the library is synchronous). Nothing is
answered before its batch has committed. The store's writer process queues
each ingress process's batch as one group, answered together.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, Span, Tracer

from service import logs
from service.eventstore import Appended, StoreUnavailable
from service.ingest import Envelope
from service.tracing import span as span_of

log = logs.get(__name__)

AppendBatch = Callable[[Sequence[Envelope]], list[Appended]]
_Entry = tuple[Sequence[Envelope], "asyncio.Future[list[Appended]]", "Span | None"]


class GroupCommitter:
    def __init__(
        self,
        append: AppendBatch,
        *,
        max_batch: int = 512,
        on_commit: Callable[[list[Appended]], None] | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self._append = append
        self._max_batch = max_batch
        self._on_commit = on_commit
        # With tracing on, each request's waiting span (linked to and from the
        # span of the batch that carried it).
        self._tracer = tracer
        # A deque and one wake-up future, not an asyncio.Queue: the queue's
        # loop checks and waiter bookkeeping showed in the ingest profile
        # (docs/performance.md, "Why the code is shaped this way"),
        # and there is exactly one consumer to wake.
        # Each entry: a group of envelopes answered together (one request's,
        # or one batch from an ingress process), its future and its span.
        self._pending: deque[_Entry] = deque()
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
        return (await self._queued((envelope,)))[0]

    async def submit_many(self, envelopes: Sequence[Envelope]) -> list[Appended]:
        """Resolves once all of `envelopes` are durably committed, in one
        transaction (a group is never split across batches)."""
        return await self._queued(envelopes)

    def _queued(self, envelopes: Sequence[Envelope]) -> asyncio.Future[list[Appended]]:
        if self._task is None or self._task.done():
            raise StoreUnavailable("the writer is not running")
        future: asyncio.Future[list[Appended]] = (
            asyncio.get_running_loop().create_future()
        )
        span = None if self._tracer is None else trace.get_current_span()
        self._pending.append((envelopes, future, span))  # unbounded: never waits
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)
        return future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        pending = self._pending
        while True:
            if not pending:
                self._wakeup = loop.create_future()
                await self._wakeup
                self._wakeup = None
            batch = [pending.popleft()]
            size = len(batch[0][0])
            while pending and size + len(pending[0][0]) <= self._max_batch:
                size += len(pending[0][0])
                batch.append(pending.popleft())
            envelopes = [env for group, _, _ in batch for env in group]
            try:
                if self._tracer is None:
                    answers = await loop.run_in_executor(
                        self._executor, self._append, envelopes
                    )
                else:
                    answers = await self._traced(self._tracer, batch, envelopes)
            except Exception as e:
                if isinstance(e, StoreUnavailable):
                    error = e
                else:
                    # Not the store's own refusal: a fault worth its own line
                    # (each request is answered 503 with the cause).
                    log.warning(
                        "appending a batch failed",
                        error=type(e).__name__,
                        batch=len(batch),
                    )
                    error = StoreUnavailable(e)
                for _, future, _ in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            start = 0
            for group, future, _ in batch:
                end = start + len(group)
                if not future.done():
                    future.set_result(answers[start:end])
                start = end
            if self._on_commit is not None:
                self._on_commit(answers)

    async def _traced(
        self, tracer: Tracer, batch: list[Any], envelopes: list[Envelope]
    ) -> list[Appended]:
        """The batch's append under a span of its own (a new trace: it serves
        many requests), linked to each request's waiting span, and the store
        write as its child; each waiting span links back to the batch."""
        waiting: list[Span] = [span for _, _, span in batch if span is not None]
        links = [Link(s.get_span_context()) for s in waiting if s.is_recording()]
        with span_of(
            tracer,
            "group commit",
            context=trace.set_span_in_context(trace.INVALID_SPAN),
            links=links,
            attributes={"loyalty.batch.size": len(envelopes)},
        ) as batch_span:
            for request in waiting:
                request.add_link(batch_span.get_span_context())
            loop = asyncio.get_running_loop()
            with span_of(tracer, "store write") as write:
                answers = await loop.run_in_executor(
                    self._executor, self._append, envelopes
                )
                accepted = [a.position for a in answers if a.status == "accepted"]
                write.set_attribute("loyalty.events.stored", len(accepted))
                if accepted:
                    write.set_attribute("loyalty.position.last", max(accepted))
            return answers
