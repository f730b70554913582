"""Kill test: SIGKILL the real service under load, then prove nothing went wrong.

    .venv/bin/python scripts/killtest.py --kills 20 --events 5000 --connections 32

Runs `python -m service run` (SQLite) in a fresh data dir. A simulated
JeriCommerce sender (asyncio + httpx, `--connections` concurrent connections)
delivers a realistic mix of the 18 event types for a few hundred customers,
some events more than once, and retries every delivery that does not get a
2xx (connection refused or reset, timeout, 503) after a short back-off, as
JeriCommerce does. Meanwhile the service is killed with SIGKILL `--kills`
times at random moments and restarted each time.

Afterwards it prints the figures and checks, exiting non-zero if any fails:

- acknowledged events lost: every id that ever got a 2xx is in the store;
- stored twice: no id occurs twice in the store;
- answers: every 2xx for an id names the same position, and the stored event
  at that position is that id; at most one `accepted` per id;
- applied twice: the sum of `event_count` over all customers (gRPC
  ListCustomers) equals the stored events of known types minus the dead
  letters, and every customer's read model equals the pure fold of that
  customer's stored events;
- the read models equal a rebuild from scratch (RebuildProjections).

The test suite runs a short form (tests/e2e/test_kill_and_storm.py) through
`run()`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
from jericommerce.loyalty.v1 import customer_pb2
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc
from jericommerce.loyalty.v1 import projection_service_pb2 as ppb
from jericommerce.loyalty.v1 import projection_service_pb2_grpc as pgrpc

from projections.customer.model import fold, view
from projections.events import EventType, RecordedEvent
from service.backends.sqlite.store import open_sqlite
from service.rpc.convert import customer_to_proto
from testkit.launch import ServiceProcess
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH

UNKNOWN_TYPES = ("Points expired", "Referral completed")

# How often each event type occurs for an active customer (Customer created
# comes first for most customers and is not drawn here).
WEIGHTS: dict[EventType, int] = {
    EventType.BALANCE_CHANGED: 30,
    EventType.WALLET_CLICK: 10,
    EventType.WALLET_VISIT: 10,
    EventType.CUSTOMER_SCANNED: 8,
    EventType.CUSTOMER_TAPPED: 6,
    EventType.WALLET_PASS_REQUESTED: 3,
    EventType.WALLET_PASS_INSTALLED: 4,
    EventType.WALLET_PASS_UNINSTALLED: 2,
    EventType.TIER_CHANGED: 3,
    EventType.COUPON_ASSIGNED: 4,
    EventType.COUPON_PASS_INSTALLED: 3,
    EventType.COUPON_PASS_UNINSTALLED: 2,
    EventType.GIFT_CARD_SENT: 2,
    EventType.REWARD_REDEEMABLE: 3,
    EventType.REWARD_REDEEMED: 2,
    EventType.REWARD_REFUNDED: 1,
    EventType.CUSTOMER_BIRTHDAY: 1,
}
TIERS = ("Bronze", "Silver", "Gold", "Platinum")
FIRST = ("Ana", "Luis", "Marta", "Jordi", "Eva", "Pau", "Nuria", "Iker", "Sara")
LAST = ("Garcia", "Lopez", "Puig", "Ferrer", "Sanz", "Vidal", "Mora", "Soler")
BROWSERS = ("Chrome 120", "Safari 17", "Firefox 121", "Edge 120")
UTM_SOURCES = ("instagram", "newsletter", "qr", "google", "")


# --- the events ----------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """One event as the sender will deliver it (possibly several times)."""

    id: str
    type_name: str  # the event-type header, in one of its accepted spellings
    type: EventType | None
    customer_id: str
    body: bytes
    poison: bool = False


@dataclass
class _Customer:
    id: str
    email: str
    created: bool = False
    wants_created: bool = True
    balance: int = 0
    tier: int = 0
    coupons: list[str] = field(default_factory=list)
    claims: list[str] = field(default_factory=list)
    rewards: list[str] = field(default_factory=list)
    clock: int = 0  # seconds after the epoch below
    activity: float = 1.0


def _spelling(rnd: random.Random, name: str) -> str:
    words = name.split()
    return rnd.choice(
        (
            name,
            name,
            "_".join(words).upper(),
            "_".join(words).lower(),
            ".".join(words).lower(),
            words[0].lower() + "".join(w.capitalize() for w in words[1:]),
        )
    )


def _iso(seconds: int) -> str:
    t = time.gmtime(1772323200 + seconds)  # 2026-03-01T00:00:00Z
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", t)


def _utm(rnd: random.Random) -> dict[str, str]:
    return {
        "utmSource": rnd.choice(UTM_SOURCES),
        "utmMedium": rnd.choice(("social", "email", "print", "")),
        "utmCampaign": rnd.choice(("spring26", "welcome", "")),
    }


def _properties(
    rnd: random.Random, c: _Customer, kind: EventType, n: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(properties, extra base fields) for one event of `kind`."""
    base: dict[str, Any] = {}
    p: dict[str, Any]
    if kind is EventType.CUSTOMER_CREATED:
        p = {
            "email": c.email,
            "origin": rnd.choice(("web", "pos", "import")),
            "referral": rnd.choice(("", "friend", "store")),
            "firstName": rnd.choice(FIRST),
            "lastName": rnd.choice(LAST),
            "phoneNumber": f"+34 6{rnd.randrange(10**8):08d}",
            **_utm(rnd),
        }
    elif kind is EventType.CUSTOMER_BIRTHDAY:
        p = {"age": rnd.randrange(18, 80)}
    elif kind is EventType.CUSTOMER_SCANNED:
        p = {
            "location": {"lat": rnd.uniform(41, 42), "lng": rnd.uniform(2, 3)},
            "device": {"os": rnd.choice(("iOS", "Android")), "app": "wallet"},
        }
    elif kind is EventType.CUSTOMER_TAPPED:
        p = {"device": {"os": rnd.choice(("iOS", "Android")), "nfc": True}}
    elif kind is EventType.WALLET_PASS_REQUESTED:
        p = {
            "email": c.email,
            "referral": "",
            "downloadLink": f"https://pass.example.com/{c.id}/{n}",
            **_utm(rnd),
        }
    elif kind in (EventType.WALLET_PASS_INSTALLED, EventType.WALLET_PASS_UNINSTALLED):
        p = {"referral": "", **_utm(rnd)}
    elif kind is EventType.BALANCE_CHANGED:
        amount = rnd.choice((5, 10, 10, 20, 50, 100, -10, -50))
        p = {
            "amount": amount,
            "reference": f"order-{n}",
            "pointsToNextReward": max(0, 500 - c.balance - amount),
            "nextRewardName": "Free coffee",
        }
        if rnd.random() < 0.5:
            p["previousBalance"] = c.balance
        c.balance += amount
    elif kind is EventType.TIER_CHANGED:
        previous = c.tier
        c.tier = max(0, min(len(TIERS) - 1, c.tier + rnd.choice((1, 1, -1))))
        p = {"previous": TIERS[previous], "current": TIERS[c.tier]}
    elif kind is EventType.COUPON_ASSIGNED:
        code = f"CPN-{n}"
        c.coupons.append(code)
        p = {
            "code": code,
            "header": "10% off",
            "body": "On your next purchase",
            "slug": "ten-off",
            "assignedFrom": rnd.choice(("campaign", "manual")),
            "installUrl": f"https://pass.example.com/c/{code}",
        }
    elif kind in (EventType.COUPON_PASS_INSTALLED, EventType.COUPON_PASS_UNINSTALLED):
        p = {"referral": "", **_utm(rnd)}
        if c.coupons and rnd.random() < 0.8:
            p["code"] = rnd.choice(c.coupons)
    elif kind is EventType.GIFT_CARD_SENT:
        p = {
            "code": f"GIFT-{n}",
            "header": "A gift for you",
            "body": "25 EUR",
            "slug": "gift-25",
            "assignedFrom": "campaign",
            "installUrl": f"https://pass.example.com/g/{n}",
            "mailSent": rnd.random() < 0.7,
        }
    elif kind is EventType.REWARD_REDEEMABLE:
        reward = f"rw-{rnd.randrange(6)}"
        c.rewards.append(reward)
        p = {
            "rewardId": reward,
            "rewardLink": f"https://shop.example.com/r/{reward}",
            "rewardTitle": "Free coffee",
            "rewardValue": rnd.choice((2, 3.5, 5)),
            "rewardCost": rnd.choice((100, 250, 500)),
            "customerRemainingBalance": c.balance,
        }
    elif kind is EventType.REWARD_REDEEMED:
        reward = rnd.choice(c.rewards) if c.rewards else f"rw-{rnd.randrange(6)}"
        p = {
            "rewardId": reward,
            "rewardLink": f"https://shop.example.com/r/{reward}",
            "rewardTitle": "Free coffee",
            "code": f"RDM-{n}",
        }
        if rnd.random() < 0.8:
            claim = f"claim-{n}"
            p["claimId"] = claim
            c.claims.append(claim)
    elif kind is EventType.REWARD_REFUNDED:
        claim = rnd.choice(c.claims) if c.claims else f"claim-x{n}"
        p = {"claimId": claim}
    elif kind is EventType.WALLET_CLICK:
        url = f"https://shop.example.com/p/{rnd.randrange(50)}"
        base = {"url": url, "browser": rnd.choice(BROWSERS)}
        p = {"url": url, "browser": base["browser"], **_utm(rnd)}
    else:  # WALLET_VISIT
        url = f"https://shop.example.com/{rnd.choice(('home', 'cart', 'offers'))}"
        base = {"url": url, "browser": rnd.choice(BROWSERS)}
        p = {"name": "visit", "url": url, "browser": base["browser"], "referral": ""}
        p.update(_utm(rnd))
    return p, base


def plan_events(
    rnd: random.Random,
    count: int,
    *,
    unknown_rate: float = 0.01,
    poison_rate: float = 0.02,
) -> list[Planned]:
    """`count` events over a few hundred customers, in createdAt order per
    customer; `unknown_rate` of them of an unknown type, and `poison_rate` of
    the balance changes poison (an unusable amount: a dead letter)."""
    n_customers = max(5, min(300, count // 12))
    customers = [
        _Customer(
            id=f"cus-{uuid.UUID(int=rnd.getrandbits(128), version=4)}",
            email=f"user{i}.{rnd.randrange(10**6)}@example.com",
            wants_created=rnd.random() < 0.9,  # some predate the integration
            activity=rnd.paretovariate(1.5),
        )
        for i in range(n_customers)
    ]
    weights = [c.activity for c in customers]
    kinds, kind_weights = list(WEIGHTS), list(WEIGHTS.values())
    events: list[Planned] = []
    for n in range(count):
        c = rnd.choices(customers, weights)[0]
        if rnd.random() >= 0.05:  # 5% share the previous createdAt (ties)
            c.clock += rnd.randrange(1, 3600)
        eid = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
        poison = False
        kind: EventType | None
        props: dict[str, Any]
        base: dict[str, Any]
        if c.wants_created and not c.created:
            kind, c.created = EventType.CUSTOMER_CREATED, True
        else:
            kind = rnd.choices(kinds, kind_weights)[0]
        if rnd.random() < unknown_rate:
            kind, name = None, rnd.choice(UNKNOWN_TYPES)
            props, base = {"amount": -rnd.randrange(1, 50)}, {}
        else:
            assert kind is not None
            props, base = _properties(rnd, c, kind, n)
            poisoned = rnd.random() < poison_rate
            if poisoned and kind is EventType.BALANCE_CHANGED:
                props["amount"], poison = "lots", True
            name = _spelling(rnd, kind.value)
        body: dict[str, Any] = {
            "email": c.email,
            "id": eid,
            "customerId": c.id,
            "createdAt": _iso(c.clock),
            "properties": props,
        }
        if rnd.random() < 0.2:
            body["campaignId"] = f"cmp-{rnd.randrange(5)}"
        body.update(base)
        events.append(Planned(eid, name, kind, c.id, json.dumps(body).encode(), poison))
    return events


def plan_deliveries(rnd: random.Random, events: list[Planned]) -> list[Planned]:
    """Roughly in order, each event once, about 10% of them 2-4 times; copies
    and a little jitter put some old events after newer ones."""
    keyed: list[tuple[float, Planned]] = []
    for i, e in enumerate(events):
        keyed.append((i + rnd.uniform(0, 20), e))
        if rnd.random() < 0.1:
            for _ in range(rnd.randrange(1, 4)):
                keyed.append((i + rnd.uniform(0, 200), e))
    keyed.sort(key=lambda k: k[0])
    return [e for _, e in keyed]


# --- the sender and the killer -------------------------------------------------


@dataclass
class SenderStats:
    deliveries: int = 0  # planned deliveries (events plus duplicate copies)
    attempts: int = 0  # HTTP requests made
    ok: int = 0  # 2xx answers
    accepted: int = 0
    duplicate: int = 0
    connection_errors: int = 0
    timeouts: int = 0
    unavailable: int = 0  # 503
    unexpected: Counter[str] = field(default_factory=Counter)  # other answers
    retries: int = 0
    gave_up: int = 0
    in_flight: int = 0
    answers: dict[str, list[tuple[str, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )


@dataclass
class KillStats:
    kills: int = 0
    under_load: int = 0
    in_flight_at_kills: int = 0
    downtime: float = 0.0
    restart_failures: list[str] = field(default_factory=list)


async def _send(
    svc: ServiceProcess,
    deliveries: list[Planned],
    connections: int,
    rnd: random.Random,
    stats: SenderStats,
    max_attempts: int,
) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[Planned, int] | None] = asyncio.Queue()
    for d in deliveries:
        queue.put_nowait((d, 1))
    stats.deliveries = len(deliveries)
    remaining = len(deliveries)
    finished = asyncio.Event()
    # One client per connection: a sender's connection, and far less client
    # CPU than one pool of many connections (httpx's pool is the bottleneck).
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    timeout = httpx.Timeout(5.0, connect=2.0)

    def settle() -> None:
        nonlocal remaining
        remaining -= 1
        if remaining == 0:
            finished.set()

    async def worker() -> None:
        async with httpx.AsyncClient(
            base_url=svc.url, limits=limits, timeout=timeout
        ) as client:
            await deliver(client)

    async def deliver(client: httpx.AsyncClient) -> None:
        while (item := await queue.get()) is not None:
            d, attempt = item
            stats.attempts += 1
            stats.in_flight += 1
            status: int | None = None
            try:
                r = await client.post(
                    WEBHOOK_PATH, content=d.body, headers=headers(d.body, d.type_name)
                )
                status = r.status_code
            except httpx.TimeoutException:
                stats.timeouts += 1
            except httpx.TransportError:
                stats.connection_errors += 1
            finally:
                stats.in_flight -= 1
            if status is not None and 200 <= status < 300:
                answer = json.loads(r.content)
                stats.ok += 1
                stats.answers[d.id].append((answer["status"], answer["position"]))
                if answer["status"] == "accepted":
                    stats.accepted += 1
                else:
                    stats.duplicate += 1
                settle()
                continue
            if status == 503:
                stats.unavailable += 1
            elif status is not None:
                stats.unexpected[f"{status} {r.text[:80]}"] += 1
            if attempt >= max_attempts:
                stats.gave_up += 1
                settle()
                continue
            stats.retries += 1
            delay = min(0.05 * 2 ** min(attempt - 1, 5), 1.0) * rnd.uniform(0.5, 1.5)
            loop.call_later(delay, queue.put_nowait, (d, attempt + 1))

    workers = [loop.create_task(worker()) for _ in range(connections)]
    await finished.wait()
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)


async def _kill_repeatedly(
    svc: ServiceProcess,
    kills: int,
    rnd: random.Random,
    sender: SenderStats,
    stats: KillStats,
    load_done: asyncio.Event,
) -> None:
    """Kill at random moments: after a random share of the deliveries has been
    answered, plus a random delay; restart at once each time."""
    total = max(1, sender.deliveries)
    thresholds = sorted(rnd.uniform(0.02, 0.95) * total for _ in range(kills))
    for threshold in thresholds:
        while sender.ok + sender.gave_up < threshold and not load_done.is_set():
            await asyncio.sleep(0.002)
        await asyncio.sleep(rnd.uniform(0, 0.25))
        stats.in_flight_at_kills += sender.in_flight
        if not load_done.is_set():
            stats.under_load += 1
        down = time.monotonic()
        await asyncio.to_thread(svc.kill)
        stats.kills += 1
        try:
            await asyncio.to_thread(svc.start, 60.0)
        except RuntimeError as e:
            stats.restart_failures.append(str(e)[-2000:])
            return
        stats.downtime += time.monotonic() - down


# --- the checks ----------------------------------------------------------------


@dataclass
class Report:
    seed: int
    data_dir: str
    events: int = 0  # distinct event ids sent
    customers: int = 0
    deliveries_planned: int = 0
    deliveries_made: int = 0  # HTTP requests, retries included
    answers_2xx: int = 0
    accepted: int = 0
    duplicate: int = 0
    connection_errors: int = 0
    timeouts: int = 0
    answers_503: int = 0
    unexpected_answers: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    gave_up: int = 0
    kills: int = 0
    kills_under_load: int = 0
    in_flight_at_kills: int = 0
    restart_failures: list[str] = field(default_factory=list)
    mean_restart_seconds: float = 0.0
    acknowledged_ids: int = 0
    committed_answer_lost: int = 0  # stored, but its `accepted` died in a kill
    stored_events: int = 0
    stored_known: int = 0
    stored_unknown: int = 0
    sent_not_stored: int = 0
    acknowledged_lost: int = 0
    stored_twice: int = 0
    accepted_twice: int = 0
    inconsistent_positions: int = 0  # an id answered with different positions
    wrong_positions: int = 0  # the answered position holds another event
    dead_letters: int = 0
    expected_dead_letters: int = 0
    event_count_sum: int = 0
    expected_event_count_sum: int = 0  # stored known-type events - dead letters
    customers_in_read_models: int = 0
    customers_unlike_pure_fold: int = 0
    rebuild_generation: tuple[int, int] = (0, 0)
    customers_unlike_rebuild: int = 0
    load_seconds: float = 0.0
    check_seconds: float = 0.0
    rebuild_seconds: float = 0.0
    total_seconds: float = 0.0
    error_log_lines: int = 0
    warning_log_lines: int = 0
    check_error: str = ""  # the checks could not finish (e.g. no catch-up)

    @property
    def applied_twice(self) -> int:
        """Applications beyond one per stored known-type event (never negative
        here; a shortfall is reported as applied_missing)."""
        return max(0, self.event_count_sum - self.expected_event_count_sum)

    @property
    def applied_missing(self) -> int:
        return max(0, self.expected_event_count_sum - self.event_count_sum)

    def failures(self) -> list[str]:
        checks = {
            "restart failed": len(self.restart_failures),
            f"checks did not finish ({self.check_error})": bool(self.check_error),
            "unexpected (non-2xx, non-503) answers": sum(
                self.unexpected_answers.values()
            ),
            "deliveries given up": self.gave_up,
            "events sent but never stored": self.sent_not_stored,
            "acknowledged events lost": self.acknowledged_lost,
            "stored twice": self.stored_twice,
            "ids accepted twice": self.accepted_twice,
            "ids answered with different positions": self.inconsistent_positions,
            "answered positions holding another event": self.wrong_positions,
            "applied twice": self.applied_twice,
            "applied missing": self.applied_missing,
            "dead letters unlike the pure fold": abs(
                self.dead_letters - self.expected_dead_letters
            ),
            "customers unlike the pure fold": self.customers_unlike_pure_fold,
            "customers unlike a rebuild": self.customers_unlike_rebuild,
        }
        failed = [f"{name}: {n}" for name, n in checks.items() if n]
        checked = not (self.restart_failures or self.check_error)
        if checked and self.rebuild_generation[1] <= self.rebuild_generation[0]:
            failed.append(
                f"rebuild did not switch generations: {self.rebuild_generation}"
            )
        return failed

    @property
    def ok(self) -> bool:
        return not self.failures()

    def text(self) -> str:
        rows = [
            ("seed", self.seed),
            ("data dir", self.data_dir),
            ("events sent (distinct ids)", self.events),
            ("customers", self.customers),
            ("deliveries planned (with duplicates)", self.deliveries_planned),
            ("deliveries made (HTTP requests)", self.deliveries_made),
            ("2xx answers", self.answers_2xx),
            ("  accepted", self.accepted),
            ("  duplicate", self.duplicate),
            ("connection refused/reset", self.connection_errors),
            ("timeouts", self.timeouts),
            ("503 answers", self.answers_503),
            ("other answers", sum(self.unexpected_answers.values())),
            ("retries", self.retries),
            ("deliveries given up", self.gave_up),
            ("kills (SIGKILL)", self.kills),
            ("  while deliveries were pending", self.kills_under_load),
            ("  requests in flight at the kills", self.in_flight_at_kills),
            ("  mean restart to ready (s)", f"{self.mean_restart_seconds:.2f}"),
            ("acknowledged ids", self.acknowledged_ids),
            (
                "  committed but `accepted` lost in a kill",
                self.committed_answer_lost,
            ),
            ("stored events", self.stored_events),
            ("  of known types", self.stored_known),
            ("  of unknown types", self.stored_unknown),
            (
                "dead letters (expected)",
                f"{self.dead_letters} ({self.expected_dead_letters})",
            ),
            ("customers in the read models", self.customers_in_read_models),
            ("sum of event_count", self.event_count_sum),
            ("known-type events - dead letters", self.expected_event_count_sum),
            ("ACKNOWLEDGED EVENTS LOST", self.acknowledged_lost),
            ("STORED TWICE", self.stored_twice),
            ("APPLIED TWICE", self.applied_twice),
            ("applied missing", self.applied_missing),
            ("events sent but never stored", self.sent_not_stored),
            ("ids accepted twice", self.accepted_twice),
            ("ids answered with different positions", self.inconsistent_positions),
            ("answered positions holding another event", self.wrong_positions),
            ("customers unlike the pure fold", self.customers_unlike_pure_fold),
            (
                "rebuild generation (before -> after)",
                "{} -> {}".format(*self.rebuild_generation),
            ),
            ("CUSTOMERS UNLIKE A REBUILD", self.customers_unlike_rebuild),
            ("service error log lines", self.error_log_lines),
            ("service warning log lines", self.warning_log_lines),
            ("load phase (s)", f"{self.load_seconds:.1f}"),
            ("checks (s)", f"{self.check_seconds:.1f}"),
            ("  of which rebuild (s)", f"{self.rebuild_seconds:.1f}"),
            ("total (s)", f"{self.total_seconds:.1f}"),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"{name:<{width}}  {value}" for name, value in rows]
        for answer, n in sorted(self.unexpected_answers.items()):
            lines.append(f"  unexpected answer x{n}: {answer}")
        failed = self.failures()
        lines.append("RESULT: " + ("OK" if not failed else "FAILED"))
        lines.extend(f"  FAILED {f}" for f in failed)
        return "\n".join(lines)


def _stored(data_dir: Path) -> list[RecordedEvent]:
    store, _, factory = open_sqlite(data_dir)
    try:
        events: list[RecordedEvent] = []
        while batch := store.read(events[-1].position if events else 0, 5000):
            events.extend(batch)
        return events
    finally:
        factory.close()


def _generation(data_dir: Path) -> int:
    """The read-model generation readers see, from the file, read-only."""
    uri = f"file:{data_dir / 'readmodels.sqlite'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as conn:
        row = conn.execute(
            "SELECT value FROM projection_meta WHERE key = 'current'"
        ).fetchone()
    conn.close()
    return int(row[0]) if row else 0


def _customers(channel: grpc.Channel) -> dict[str, customer_pb2.Customer]:
    stub = cgrpc.CustomerServiceStub(channel)
    found: dict[str, customer_pb2.Customer] = {}
    token = ""
    while True:
        page = stub.ListCustomers(
            cpb.ListCustomersRequest(page_size=1000, page_token=token), timeout=30
        )
        for c in page.customers:
            assert c.customer_id not in found, f"listed twice: {c.customer_id}"
            found[c.customer_id] = c
        token = page.next_page_token
        if not token:
            return found


def _caught_up(
    channel: grpc.Channel, timeout: float = 120.0
) -> ppb.GetProjectionStatusResponse:
    stub = pgrpc.ProjectionServiceStub(channel)
    deadline = time.monotonic() + timeout
    while True:
        s = stub.GetProjectionStatus(ppb.GetProjectionStatusRequest(), timeout=10)
        if not s.rebuilding and s.lag == 0 and s.applied_position == s.head_position:
            return s
        if time.monotonic() > deadline:
            raise TimeoutError(f"projections did not catch up: {s}")
        time.sleep(0.05)


def _diff(a: dict[str, Any], b: dict[str, Any]) -> int:
    return sum(1 for k in set(a) | set(b) if a.get(k) != b.get(k))


def check(
    svc: ServiceProcess, sent: list[Planned], sender: SenderStats, report: Report
) -> None:
    """Fill the check figures of `report` from the store and the gRPC API."""
    started = time.monotonic()
    with grpc.insecure_channel(svc.grpc_target) as channel:
        status = _caught_up(channel)
        live = _customers(channel)
        stored = _stored(svc.data_dir)

        ids = Counter(e.id for e in stored)
        by_position = {e.position: e.id for e in stored}
        acked = {i for i, answers in sender.answers.items() if answers}
        report.acknowledged_ids = len(acked)
        report.stored_events = len(stored)
        report.stored_known = sum(1 for e in stored if e.type is not None)
        report.stored_unknown = report.stored_events - report.stored_known
        report.stored_twice = sum(n - 1 for n in ids.values() if n > 1)
        report.acknowledged_lost = len(acked - set(ids))
        report.sent_not_stored = len({e.id for e in sent} - set(ids))
        for eid, answers in sender.answers.items():
            accepted = sum(1 for s, _ in answers if s == "accepted")
            report.accepted_twice += accepted > 1
            report.committed_answer_lost += accepted == 0
            positions = {p for _, p in answers}
            if len(positions) > 1:
                report.inconsistent_positions += 1
            report.wrong_positions += sum(
                1 for p in positions if by_position.get(p) != eid
            )

        # Applied exactly once: the views against the pure fold of the set.
        per_customer: dict[str, list[RecordedEvent]] = defaultdict(list)
        for e in stored:
            per_customer[e.customer_id].append(e)
        expected: dict[str, customer_pb2.Customer] = {}
        for cid, events in per_customer.items():
            result = fold(cid, events)
            report.expected_dead_letters += len(result.dead)
            if result.state.event_count:
                expected[cid] = customer_to_proto(view(result.state))
        report.dead_letters = status.dead_letters
        report.customers_in_read_models = len(live)
        report.event_count_sum = sum(c.event_count for c in live.values())
        report.expected_event_count_sum = report.stored_known - status.dead_letters
        report.customers_unlike_pure_fold = _diff(live, expected)

        # Equal to a rebuild from scratch.
        rebuild_started = time.monotonic()
        before = _generation(svc.data_dir)
        answer = pgrpc.ProjectionServiceStub(channel).RebuildProjections(
            ppb.RebuildProjectionsRequest(), timeout=10
        )
        assert answer.started, "a rebuild was already running"
        _caught_up(channel)
        report.rebuild_generation = (before, _generation(svc.data_dir))
        rebuilt = _customers(channel)
        report.rebuild_seconds = time.monotonic() - rebuild_started
        report.customers_unlike_rebuild = _diff(live, rebuilt)
    report.check_seconds = time.monotonic() - started


# --- the whole run -------------------------------------------------------------


def run(
    kills: int = 20,
    events: int = 5000,
    connections: int = 32,
    seed: int | None = None,
    data_dir: Path | str | None = None,
    *,
    max_attempts: int = 200,
    progress: bool = False,
) -> Report:
    """Run the kill test against a fresh service in `data_dir` (a new
    temporary directory when None) and return the figures."""
    run_started = time.monotonic()
    seed = random.randrange(2**32) if seed is None else seed
    rnd = random.Random(seed)
    directory = Path(data_dir or tempfile.mkdtemp(prefix="killtest-")).resolve()
    report = Report(seed=seed, data_dir=str(directory))
    sent = plan_events(rnd, events)
    deliveries = plan_deliveries(rnd, sent)
    report.events = len(sent)
    report.customers = len({e.customer_id for e in sent})

    def say(message: str) -> None:
        if progress:
            print(message, file=sys.stderr, flush=True)

    svc = ServiceProcess(directory)
    svc.env.pop("DATABASE_URL", None)  # the SQLite default, checked in place
    svc.start()
    try:
        sender, killer = SenderStats(), KillStats()
        sender.deliveries = len(deliveries)
        say(
            f"sending {len(sent)} events as {len(deliveries)} deliveries over "
            f"{connections} connections, killing {kills} times (seed {seed})"
        )

        async def load() -> None:
            done = asyncio.Event()

            async def send() -> None:
                try:
                    await _send(svc, deliveries, connections, rnd, sender, max_attempts)
                finally:
                    done.set()

            await asyncio.gather(
                send(), _kill_repeatedly(svc, kills, rnd, sender, killer, done)
            )

        started = time.monotonic()
        asyncio.run(load())
        report.load_seconds = time.monotonic() - started
        report.deliveries_planned = sender.deliveries
        report.deliveries_made = sender.attempts
        report.answers_2xx = sender.ok
        report.accepted = sender.accepted
        report.duplicate = sender.duplicate
        report.connection_errors = sender.connection_errors
        report.timeouts = sender.timeouts
        report.answers_503 = sender.unavailable
        report.unexpected_answers = dict(sender.unexpected)
        report.retries = sender.retries
        report.gave_up = sender.gave_up
        report.kills = killer.kills
        report.kills_under_load = killer.under_load
        report.in_flight_at_kills = killer.in_flight_at_kills
        report.restart_failures = killer.restart_failures
        if killer.kills:
            report.mean_restart_seconds = killer.downtime / killer.kills
        if not killer.restart_failures:
            say(f"load done in {report.load_seconds:.1f} s; checking")
            try:
                check(svc, sent, sender, report)
            except Exception as e:  # reported as a failed check, with figures
                report.check_error = f"{type(e).__name__}: {e}"[:500]
    finally:
        svc.stop()
        levels = Counter(
            json.loads(line).get("level", "")
            for line in svc.log().splitlines()
            if line.startswith("{")
        )
        report.error_log_lines = levels["error"] + levels["critical"]
        report.warning_log_lines = levels["warning"]
    report.total_seconds = time.monotonic() - run_started
    if data_dir is None and report.ok:
        shutil.rmtree(directory, ignore_errors=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs (default: 20)")
    parser.add_argument(
        "--events", type=int, default=5000, help="distinct events (default: 5000)"
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=32,
        help="concurrent sender connections (default: 32)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seeds the events, duplicates, back-offs and kill moments "
        "(default: random, printed)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="a new or empty directory (default: a temporary one, removed "
        "after a passing run)",
    )
    args = parser.parse_args(argv)
    report = run(
        args.kills,
        args.events,
        args.connections,
        args.seed,
        args.data_dir,
        progress=True,
    )
    print(report.text())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
