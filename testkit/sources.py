"""An in-memory event store, and a realistic history to fill it with, for
the projections' tests."""

from __future__ import annotations

import itertools
import json
import random
from typing import Any

from projections.events import EventType, RecordedEvent
from testkit.recorded import make_event
from testkit.traffic import deliveries, plan_events


class ListSource:
    """An in-memory event store: the projections' view of one."""

    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []
        self._next = itertools.count(1)

    def add(self, kind: EventType | str, **kw: Any) -> RecordedEvent:
        event = make_event(kind, position=next(self._next), **kw)
        self.events.append(event)
        return event

    def read(self, after: int, limit: int) -> list[RecordedEvent]:
        return [e for e in self.events if e.position > after][:limit]

    def head(self) -> int:
        return self.events[-1].position if self.events else 0


def history(source: ListSource, n: int = 300, seed: int = 7) -> None:
    """`n` events of the kit's traffic for a dozen customers, stored out of
    createdAt order (late deliveries), the email now and then left out or in
    capitals; then one event of an unknown type and one poison event."""
    rnd = random.Random(seed)
    planned = plan_events(rnd, n, customers=12, unknown_rate=0, poison_rate=0)
    for hook in deliveries(rnd, planned, duplicate_rate=0):
        body = json.loads(hook.body)
        email = rnd.choice([None, body["email"], body["email"].upper()])
        base = {k: body[k] for k in ("campaignId", "url", "browser") if k in body}
        source.add(
            hook.type or hook.type_name,
            id=hook.id,
            customer_id=hook.customer_id,
            created_at=body["createdAt"],
            email=email,
            props=body["properties"],
            base=base,
        )
    someone, other = planned[0].customer_id, planned[-1].customer_id
    source.add("Points expired", id="unknown-1", customer_id=someone)
    source.add(
        EventType.BALANCE_CHANGED, id="poison-1", customer_id=other, amount="lots"
    )
