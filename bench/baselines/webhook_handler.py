"""The service's own webhook app with everything but the store: a step of
the P1 ladder between the bare Sanic app and the service.

    python -m bench.baselines.webhook_handler PORT SECRET [--commit-ms MS]

`service.webhook.create_app` as the service builds it (signature check,
envelope parsing, metrics, the answer), hosted on the stdlib asyncio loop
as the service hosts it, with a `submit` that answers "accepted" on the
loop's next turn instead of queueing the webhook for a group commit.

With `--commit-ms`, the next step: webhooks go through the service's own
`GroupCommitter` (the queue, the writer task, the commit thread, the
futures) to a store that only waits MS with the GIL released, as a commit's
fsync does, and stores nothing. Between it and `service ingress` is what
the append's own work costs under load.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from collections.abc import Sequence

from service.adapters.sanic import start_server
from service.config import DEFAULT_MAX_ID_LENGTH
from service.eventstore import Appended
from service.groupcommit import GroupCommitter
from service.ingest import Envelope
from service.metrics import Metrics
from service.webhook import Ingress, create_app


async def serve(port: int, secret: str, commit_ms: float | None = None) -> None:
    loop = asyncio.get_running_loop()
    positions = itertools.count(1)

    async def submit(envelope: Envelope) -> Appended:
        answered: asyncio.Future[Appended] = loop.create_future()
        loop.call_soon(answered.set_result, Appended("accepted", next(positions)))
        return await answered

    if commit_ms is not None:

        def append(envelopes: Sequence[Envelope]) -> list[Appended]:
            time.sleep(commit_ms / 1000)  # the fsync's wait, GIL released
            return [Appended("accepted", next(positions)) for _ in envelopes]

        committer = GroupCommitter(append)
        committer.start()
        submit = committer.submit  # type: ignore[assignment]

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
    await start_server(app, "127.0.0.1", port)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("secret")
    parser.add_argument(
        "--commit-ms",
        type=float,
        help="through the group commit, to a store that waits this long",
    )
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.secret, args.commit_ms))


if __name__ == "__main__":
    main()
