"""Streams of realistic traffic: each event goes to a customer created before
it, with a type drawn by the catalogue's weights and the properties that type
carries. Deterministic for a given seed.

- `webhooks`: a long stream over numbered customers, made in pieces (the
  bench: millions of events, ids unique per `tag`).
- `plan_events`: a few hundred customers of uneven activity, some of whom
  predate the integration, with unknown types and poison now and then (the
  kill test, the duplicate storm, the integration tests).
- `deliveries`: the order a sender delivers events in, with retries.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections import OrderedDict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from projections.events import EventType
from testkit.traffic.catalogue import WEIGHTS
from testkit.traffic.customers import Customer, new_customer, uuid4
from testkit.traffic.webhook import Webhook, make, poison, spelling, unknown

STREAM_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
PLAN_EPOCH = datetime(2026, 3, 1, tzinfo=UTC)
_KINDS = list(WEIGHTS)
_CUM = list(itertools.accumulate(WEIGHTS.values()))
# Customers whose past a stream remembers at once: enough for the bench's
# hot set, small enough for a million customers.
_REMEMBERED = 50_000


def draw_kind(rng: random.Random) -> EventType:
    return _KINDS[bisect.bisect_right(_CUM, rng.randrange(_CUM[-1]))]


def customer_id(n: int) -> str:
    return f"cus-{n:07d}"


class _Numbered:
    """Customers by number, each made from its own seed (the same name and
    email in every piece of a stream); the least recently seen forgotten."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.known: OrderedDict[int, Customer] = OrderedDict()

    def __getitem__(self, n: int) -> Customer:
        c = self.known.get(n)
        if c is None:
            rng = random.Random(f"{self.seed}:customer:{n}")
            c = self.known[n] = new_customer(rng, customer_id(n), email_tag=f"{n}")
            if len(self.known) > _REMEMBERED:
                self.known.popitem(last=False)
        else:
            self.known.move_to_end(n)
        return c


def webhooks(
    count: int,
    customers: int,
    *,
    tag: str,
    seed: int = 6,
    offset: int = 0,
    spread: int | None = None,
) -> Iterator[Webhook]:
    """`count` unique webhooks over `customers` customers, ids `{tag}-{seq}`.

    Events `offset..offset+count` of the (tag, seed) stream, so a stream can
    be made in pieces. The customers are created at evenly spaced events over
    its first `spread` events (default `customers`: the first events create
    them all); every other event goes to a customer created before it, so
    older customers have longer histories, as in a real programme.
    """
    spread = max(spread or customers, customers)
    rng = random.Random(f"{seed}:{tag}:{offset}")
    known = _Numbered(seed)
    for seq in range(offset, offset + count):
        made = min(-(-seq * customers // spread), customers)  # created before seq
        if seq < spread and -(-(seq + 1) * customers // spread) > made:
            n, kind = made, EventType.CUSTOMER_CREATED
        else:
            n, kind = rng.randrange(max(made, 1)), draw_kind(rng)
        when = STREAM_EPOCH + timedelta(seconds=seq * 7 + rng.randrange(7))
        yield make(
            rng, known[n], kind, seq, event_id=f"{tag}-{seq:08d}", created_at=when
        )


def plan_events(
    rng: random.Random,
    count: int,
    *,
    customers: int | None = None,
    unknown_rate: float = 0.01,
    poison_rate: float = 0.02,
    spellings: bool = True,
) -> list[Webhook]:
    """`count` events over `customers` customers (default: a few hundred), in
    createdAt order per customer (5% share the previous one's: ties);
    `unknown_rate` of them of an unknown type, and `poison_rate` of the
    balance changes poison. `spellings`: the type header in any accepted
    spelling rather than always the documented name."""
    if customers is None:
        customers = max(5, min(300, count // 12))
    people = [
        new_customer(rng, email_tag=f"{i}", activity=rng.paretovariate(1.5))
        for i in range(customers)
    ]
    predates = {c.id for c in people if rng.random() >= 0.9}  # sent no creation
    activity = [c.activity for c in people]
    events: list[Webhook] = []
    for n in range(count):
        c = rng.choices(people, activity)[0]
        if rng.random() >= 0.05:
            c.clock += rng.randrange(1, 3600)
        when = PLAN_EPOCH + timedelta(seconds=c.clock)
        eid = uuid4(rng)
        if rng.random() < unknown_rate:
            events.append(unknown(rng, c, event_id=eid, created_at=when))
            continue
        if c.created or c.id in predates:
            kind = draw_kind(rng)
        else:
            kind = EventType.CUSTOMER_CREATED
        if kind is EventType.BALANCE_CHANGED and rng.random() < poison_rate:
            events.append(poison(c, event_id=eid, created_at=when, reference=f"p{n}"))
            continue
        name = spelling(rng, kind.value) if spellings else kind.value
        events.append(
            make(rng, c, kind, n, event_id=eid, created_at=when, type_name=name)
        )
    return events


def deliveries(
    rng: random.Random, events: list[Webhook], duplicate_rate: float = 0.1
) -> list[Webhook]:
    """Roughly in order, each event once and `duplicate_rate` of them 2-4
    times; copies and a little jitter put some old events after newer ones."""
    keyed: list[tuple[float, Webhook]] = []
    for i, e in enumerate(events):
        keyed.append((i + rng.uniform(0, 20), e))
        if rng.random() < duplicate_rate:
            for _ in range(rng.randrange(1, 4)):
                keyed.append((i + rng.uniform(0, 200), e))
    keyed.sort(key=lambda k: k[0])
    return [e for _, e in keyed]
