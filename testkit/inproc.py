"""The gRPC API in this process: the real server on a free port, on its own
event loop in a thread, over a real SQLite store, with the projection worker.

Quicker than starting `python -m service` and lets a test look inside (the
position watches, the metrics) while a real client talks to it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from collections.abc import Callable, Coroutine
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
        self._stop_api: Callable[[], Any] | None = None
        self._worker: ProjectionWorker | None = None

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
        from service.runtime import _start_api

        self._thread.start()

        async def start() -> None:
            loop = asyncio.get_running_loop()
            self.head, self.applied = PositionWatch(loop), PositionWatch(loop)
            self.head.advance(self.container.events.head())
            self._worker = ProjectionWorker(
                self.container.events,
                self.container.models,
                on_applied=self.applied.advance,
                poll_interval=0.2,
            )
            self._worker.start()
            _, self._stop_api, self.port = await _start_api(
                self.container, self.head, self.applied
            )

        self.run(start())
        return self

    def stop(self) -> None:
        if self._stop_api is not None:
            result = self._stop_api()
            if asyncio.iscoroutine(result):
                self.run(result)
        if self._worker is not None:
            self._worker.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
        self.container.close()

    def __enter__(self) -> InProcessApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
