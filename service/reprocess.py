"""Re-processing a quarantined request once the parser accepts it.

The request was signed when it arrived, so it is appended like a webhook:
its `id` still makes it exactly-once (a copy JeriCommerce retried meanwhile
is answered `duplicate`), and the quarantine row records the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.eventstore import EventStore
from service.ingest import (
    DEFAULT_MAX_ID_LENGTH,
    EVENT_TYPE_HEADER,
    InvalidWebhook,
    parse_envelope,
)
from service.quarantine import Quarantine


@dataclass(frozen=True)
class Reprocessed:
    id: int
    stored: bool
    detail: str


def reprocess(
    quarantine: Quarantine,
    events: EventStore,
    request_id: int,
    *,
    max_id_length: int = DEFAULT_MAX_ID_LENGTH,
) -> Reprocessed:
    item = quarantine.get(request_id)
    if item is None:
        return Reprocessed(request_id, False, "no such quarantined request")
    if item.resolution:
        return Reprocessed(
            request_id, False, f"already re-processed: {item.resolution}"
        )
    try:
        envelope = parse_envelope(
            item.body,
            item.headers.get(EVENT_TYPE_HEADER),
            max_id_length=max_id_length,
        )
    except InvalidWebhook as e:
        return Reprocessed(request_id, False, f"still invalid: {e}")
    (answer,) = events.append([envelope])
    resolution = f"{answer.status} at position {answer.position}"
    quarantine.resolve(request_id, resolution)
    return Reprocessed(request_id, True, resolution)
