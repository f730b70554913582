"""The gRPC API in this process: the real server on a free port, on its own
event loop in a thread, over a real SQLite store, with the projection worker,
built by the composition root and run by `service.runtime`.

Quicker than starting `python -m service` and lets a test look inside (the
position watches, the metrics) while a real client talks to it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from projections.worker import ProjectionWorker
from service.bootstrap import Container, build
from service.config import Settings
from service.ingest import parse_envelope
from service.positions import PositionWatch

T = TypeVar("T")


class InProcessApi:
    def __init__(self, data_dir: Path, **env: str) -> None:
        self.settings = Settings.from_environ(
            {"DATA_DIR": str(data_dir), "GRPC_PORT": "0", **env}, require_secret=False
        )
        self.container: Container = build(self.settings)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.head: PositionWatch
        self.applied: PositionWatch
        self.port = 0
        self._worker: ProjectionWorker | None = None
        self._serving: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run `coro` on the server's loop and wait for its result."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def append(self, events: list[tuple[str, str, dict[str, Any]]]) -> int:
        """Store (event type, customer id, extra body fields) events as the
        ingress would, tell the followers, and return the new head."""
        envelopes = []
        for kind, customer, extra in events:
            body = {"customerId": customer, "createdAt": "2026-03-08T12:00:00Z"}
            body.update(extra)
            envelopes.append(parse_envelope(json.dumps(body).encode(), kind))
        answers = self.container.events.append(envelopes)
        head = max(a.position for a in answers)
        self.head.advance(head)
        if self._worker is not None:
            self._worker.wake()
        return head

    def start(self) -> InProcessApi:
        """Build the API and worker roles through the composition root and
        serve them on this object's loop until `stop`."""
        from service.bootstrap import build_service
        from service.runtime import Bound, serve

        self._thread.start()

        async def start() -> None:
            loop = asyncio.get_running_loop()
            service = build_service(self.container, frozenset({"worker", "api"}))
            self.head, self.applied = service.head, service.applied
            self._worker = service.worker
            self._stopping = asyncio.Event()
            ready: asyncio.Future[Bound] = loop.create_future()
            self._serving = loop.create_task(
                serve(service, stop=self._stopping, on_ready=ready.set_result)
            )
            started: list[asyncio.Future[Any]] = [self._serving, ready]
            await asyncio.wait(started, return_when=asyncio.FIRST_COMPLETED)
            if not ready.done():
                self._serving.result()  # raises what stopped it
            self.port = ready.result().grpc_port or 0

        self.run(start())
        return self

    def stop(self) -> None:
        if self._serving is not None:
            self.loop.call_soon_threadsafe(self._stopping.set)
            self.run(asyncio.wait_for(asyncio.shield(self._serving), 30))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
        self.container.close()

    def __enter__(self) -> InProcessApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
