"""The bare Sanic app: the webhook POST answered with a constant, nothing else.

    python -m bench.baselines.bare_sanic PORT [--loop uvloop|asyncio]

`uvloop` (the default) is Sanic as `app.run` gives it; `asyncio` hosts the
app the way the service does (`create_server` on the stdlib loop), to show
how much of the gap is the event loop.
"""

from __future__ import annotations

import argparse
import asyncio

from sanic import Request, Sanic, response
from sanic.response import HTTPResponse

ANSWER = {"status": "accepted", "position": 1}


def create_app() -> Sanic:
    app = Sanic("bare_sanic")
    app.config.MOTD = False
    app.config.ACCESS_LOG = False

    @app.post("/webhooks/jericommerce")
    async def webhook(request: Request) -> HTTPResponse:
        return response.json(ANSWER)

    @app.get("/healthz")
    async def healthz(request: Request) -> HTTPResponse:
        return response.json({"status": "alive"})

    return app


async def _serve_on_asyncio(app: Sanic, port: int) -> None:
    server = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True
    )
    assert server is not None
    await server.startup()
    await server.before_start()
    await server.start_serving()
    await server.after_start()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args()
    app = create_app()
    if args.loop == "asyncio":
        asyncio.run(_serve_on_asyncio(app, args.port))
    else:
        app.run(host="127.0.0.1", port=args.port, single_process=True)


if __name__ == "__main__":
    main()
