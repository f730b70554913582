"""Start and stop order of the single-process service on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass

from service import logs
from service.bootstrap import Container
from service.eventstore import StoreUnavailable
from service.groupcommit import GroupCommitter
from service.webhook import Ingress, create_app

log = logs.get(__name__)


@dataclass
class Bound:
    http_port: int


async def serve(
    container: Container,
    *,
    http_sock: socket.socket | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[Bound], None] | None = None,
) -> None:
    """Run until `stop` is set (or SIGTERM/SIGINT), then shut down in order:
    stop taking requests, finish the writes in flight, close the store."""
    settings = container.settings
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Not possible outside the main thread (in-process tests).
        with contextlib.suppress(RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)

    metrics = container.metrics
    committer = GroupCommitter(
        container.events.append,
        on_commit=lambda answers: metrics.batch_size.observe(len(answers)),
    )
    committer.start()

    async def ready() -> dict[str, bool]:
        try:
            await asyncio.to_thread(container.events.head)
            store = True
        except StoreUnavailable:
            store = False
        return {"store": store}

    app = create_app(
        Ingress(
            secrets=settings.webhook_secrets,
            max_body_bytes=settings.max_body_bytes,
            submit=committer.submit,
            quarantine=container.quarantine.add,
            ready=ready,
            metrics=metrics,
        )
    )
    server = await app.create_server(
        host=None if http_sock else settings.http_host,
        port=None if http_sock else settings.http_port,
        sock=http_sock,
        return_asyncio_server=True,
    )
    assert server is not None and server.server is not None
    await server.startup()
    await server.before_start()
    await server.start_serving()
    await server.after_start()
    http_port = server.server.sockets[0].getsockname()[1]
    log.info("listening", http=f"{settings.http_host}:{http_port}")
    if on_ready is not None:
        on_ready(Bound(http_port=http_port))
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()
        await committer.stop()
        log.info("stopped")
