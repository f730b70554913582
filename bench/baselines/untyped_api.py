"""The service's gRPC API role exactly as shipped, except that stored events
are replayed without their typed payload (as before payloads existed): the
same-run baseline of the replay benchmark.

    python -m bench.baselines.untyped_api api    (settings from the environment)
"""

from __future__ import annotations

import sys

from projections.events import RecordedEvent
from service.cli import main
from service.rpc.convert import events


def _no_payload(message: object, event: RecordedEvent) -> None:
    return None


if __name__ == "__main__":
    # The one hook: event_to_proto looks set_payload up in its module at each
    # call, so replacing it there turns typed payloads off and nothing else.
    events.set_payload = _no_payload
    sys.exit(main(sys.argv[1:]))
