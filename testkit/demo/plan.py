"""What the demo sends: the customers' stories, interleaved as a busy sender
would, then a second round of late deliveries, retries, signed but invalid
bodies, one poison event and one event of an unknown type."""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from testkit.traffic.customers import uuid4
from testkit.traffic.stories import Delivery, Story, StoryWriter
from testkit.traffic.webhook import iso, poison, unknown

UNKNOWN_TYPE = "Customer merged"  # a type a newer JeriCommerce might send


@dataclass
class Plan:
    stories: list[Story]
    on_time: list[Delivery]  # the first round
    second: list[Delivery]  # late ones, retries and the odd ones, shuffled
    poison: Delivery

    @property
    def everything(self) -> list[Delivery]:
        return [*self.on_time, *self.second]


def invalid_deliveries(rng: random.Random, customer_id: str) -> list[Delivery]:
    """Signed but unusable: each must be answered 400 and quarantined."""
    now = iso(datetime.now(UTC))

    def body(**fields: Any) -> bytes:
        return json.dumps(fields).encode()

    def eid() -> str:
        return uuid4(rng)

    return [
        Delivery("Balance changed", b'{"id": "' + eid().encode() + b'", "customerId"'),
        Delivery("Wallet click", body(id=eid(), createdAt=now, properties={})),
        Delivery(
            "Customer tapped",
            body(id=eid(), customerId=customer_id, createdAt="last tuesday"),
        ),
        Delivery(
            "Balance changed",
            f'{{"id": "{eid()}", "customerId": "{customer_id}", "createdAt": '
            f'"{now}", "properties": {{"amount": NaN}}}}'.encode(),
        ),
        Delivery(None, body(id=eid(), customerId=customer_id, createdAt=now)),
    ]


def plan(customers: int, run: str, rng: random.Random) -> Plan:
    """The stories, then the deliveries of the two rounds: on time (with a few
    retries racing their original), then late ones, retries and the odd
    ones."""
    stories = [StoryWriter(rng, run, i, full=i == 0).write() for i in range(customers)]
    on_time: list[Delivery] = []
    late: list[Delivery] = []
    # Interleave customers, as a busy sender would.
    queues = [list(s.deliveries) for s in stories]
    while any(queues):
        for q in queues:
            if q:
                d = q.pop(0)
                (late if d.late else on_time).append(d)
                if not d.late and rng.random() < 0.02:
                    on_time.append(dataclasses.replace(d, copy=True))
    retries = [
        dataclasses.replace(d, copy=True, encoding=rng.choice(("hex", "base64")))
        for d in on_time
        if not d.copy and rng.random() < 0.08
    ]
    victim = stories[1 % len(stories)].customer
    yesterday = datetime.now(UTC) - timedelta(days=1)
    bad = poison(
        victim, event_id=uuid4(rng), created_at=yesterday, reference="manual-adjustment"
    )
    other = stories[2 % len(stories)].customer
    odd = unknown(
        rng, other, event_id=uuid4(rng), created_at=datetime.now(UTC), name=UNKNOWN_TYPE
    )
    poisoned = Delivery.of(bad, rng)
    second = [
        *late,
        *retries,
        *invalid_deliveries(rng, victim.id),
        poisoned,
        Delivery.of(odd, rng),
    ]
    rng.shuffle(second)
    return Plan(stories, on_time, second, poisoned)
