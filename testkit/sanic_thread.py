"""A Sanic app served over real HTTP from a thread of the test process, with
the service's own start and stop (`service.adapters.sanic`).

Sanic rewrites its request path once per process (TouchUp) and puts the
rewritten method on the class. A server started outside test mode leaves
no copy of the original, so a later test-client app in the same process
fails to rewrite it again (`KeyError: 'handle_request'`). Starting in test
mode keeps the original aside, as Sanic's own test client does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sanic import Sanic

from service.adapters.sanic import start_server, stop_server


@contextmanager
def serving(app: Sanic) -> Iterator[int]:  # type: ignore[type-arg]
    """Serve `app` on a free port of 127.0.0.1 until the block ends; yields the port."""
    loop = asyncio.new_event_loop()
    started, stop = threading.Event(), asyncio.Event()
    port: list[int] = []
    failed: list[BaseException] = []

    async def serve() -> None:
        test_mode, Sanic.test_mode = Sanic.test_mode, True
        try:
            server, bound = await start_server(app, "127.0.0.1", 0)
        except BaseException as error:
            failed.append(error)
            started.set()
            raise
        finally:
            Sanic.test_mode = test_mode
        port.append(bound)
        started.set()
        await stop.wait()
        await stop_server(server)

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),))
    thread.start()
    try:
        assert started.wait(10), "the Sanic app did not start in 10 s"
        if failed:
            raise RuntimeError("the Sanic app failed to start") from failed[0]
        yield port[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
