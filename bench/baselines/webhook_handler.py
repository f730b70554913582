"""The service's own webhook app with everything but the store: a step of
the P1 ladder between the bare Sanic app and the service.

    python -m bench.baselines.webhook_handler PORT SECRET

`service.webhook.create_app` as the service builds it (signature check,
envelope parsing, metrics, the answer), hosted on the stdlib asyncio loop
as the service hosts it, with a `submit` that answers "accepted" on the
loop's next turn instead of queueing the webhook for a group commit.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools

from service.config import DEFAULT_MAX_ID_LENGTH
from service.eventstore import Appended
from service.ingest import Envelope
from service.metrics import Metrics
from service.webhook import Ingress, create_app


async def serve(port: int, secret: str) -> None:
    loop = asyncio.get_running_loop()
    positions = itertools.count(1)

    async def submit(envelope: Envelope) -> Appended:
        answered: asyncio.Future[Appended] = loop.create_future()
        loop.call_soon(answered.set_result, Appended("accepted", next(positions)))
        return await answered

    async def ready() -> dict[str, bool]:
        return {"store": True}

    app = create_app(
        Ingress(
            secrets=(secret.encode(),),
            max_body_bytes=1 << 20,
            max_header_bytes=16384,
            max_id_length=DEFAULT_MAX_ID_LENGTH,
            request_timeout=30.0,
            keep_alive_timeout=30.0,
            submit=submit,
            quarantine=lambda reason, headers, body: 0,
            ready=ready,
            metrics=Metrics(),
        )
    )
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
    parser.add_argument("secret")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.secret))


if __name__ == "__main__":
    main()
