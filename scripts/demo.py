"""See the whole loyalty service work in one command (`make demo`).

    .venv/bin/python scripts/demo.py [--quick] [--customers N]

If nothing answers on HTTP_HOST:HTTP_PORT it starts `python -m service run` in
the background (log: DATA_DIR/demo-service.log, pid: DATA_DIR/demo-service.pid)
and leaves it running. Then it plays JeriCommerce: signed webhooks for a few
hundred customers (30 with --quick) across all 18 event types, over concurrent
connections, with retries of the same delivery, older events delivered after
newer ones, a few signed-but-invalid bodies (quarantined) and one poison event
(dead-lettered). Finally it reads everything back over gRPC, checks it, and
prints a summary and one customer's full read model.

Settings come from the environment, as the service's own do (HTTP_HOST,
HTTP_PORT, GRPC_HOST, GRPC_PORT, DATA_DIR, WEBHOOK_SECRET); without
WEBHOOK_SECRET the demo uses "demo-secret". It exits non-zero if the service
answers anything unexpected (a 5xx, a lost or doubled event, a wrong balance).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import shlex
import sys
import time
import unicodedata
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
from google.protobuf import json_format
from jericommerce.loyalty.v1 import customer_pb2
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc
from jericommerce.loyalty.v1 import event_service_pb2 as epb
from jericommerce.loyalty.v1 import event_service_pb2_grpc as egrpc
from jericommerce.loyalty.v1 import projection_service_pb2 as ppb
from jericommerce.loyalty.v1 import projection_service_pb2_grpc as pgrpc

from projections.events import EventType
from service.config import ConfigError, Settings
from service.ingest import EVENT_TYPE_HEADER, SIGNATURE_HEADER
from testkit.launch import NotReady, http_ok, spawn, wait_until
from testkit.signing import sign
from testkit.webhooks import WEBHOOK_PATH

DEMO_SECRET = "demo-secret"
CONCURRENCY = 16
START_TIMEOUT = 30.0
READ_TIMEOUT = 60.0

# The 18 events JeriCommerce sends (docs/webhooks.md).
EVENT_TYPES = tuple(t.value for t in EventType)
UNKNOWN_TYPE = "Customer merged"  # a type a newer JeriCommerce might send

# fmt: off
FIRST_NAMES = (
    "Lucía", "Hugo", "Martina", "Mateo", "Sofía", "Leo", "Valeria", "Daniel",
    "Paula", "Álvaro", "Emma", "Pablo", "Julia", "Manuel", "Carla", "Adrián", "Noa",
    "Marco", "Olivia", "Enzo", "Aitana", "Iker", "Chloé", "Liam", "Yuki", "Priya",
    "Omar", "Ingrid", "Tomás", "Inés",
)
LAST_NAMES = (
    "García", "Martínez", "López", "Sánchez", "Pérez", "Gómez", "Fernández", "Díaz",
    "Moreno", "Navarro", "Romero", "Torres", "Ruiz", "Serrano", "Molina", "Ortega",
    "Castro", "Núñez", "Iglesias", "Vidal",
)
# fmt: on
STORES = (
    ("st-bcn-01", "Barcelona Gràcia", "Barcelona", 41.4036, 2.1561),
    ("st-mad-02", "Madrid Malasaña", "Madrid", 40.4265, -3.7043),
    ("st-vlc-01", "Valencia Ruzafa", "Valencia", 39.4623, -0.3736),
    ("st-svq-01", "Sevilla Triana", "Sevilla", 37.3828, -6.0020),
)
DEVICES = (
    {"model": "iPhone 15", "os": "iOS 17.4", "wallet": "Apple Wallet"},
    {"model": "Pixel 8", "os": "Android 14", "wallet": "Google Wallet"},
    {"model": "Galaxy S23", "os": "Android 14", "wallet": "Google Wallet"},
    {"model": "iPhone 13", "os": "iOS 16.7", "wallet": "Apple Wallet"},
)
BROWSERS = ("Chrome 122", "Safari 17.3", "Firefox 123", "Samsung Internet 24")
UTM_SOURCES = ("instagram", "newsletter", "google", "tiktok", "in-store")
UTM_MEDIUMS = ("social", "email", "cpc", "qr")
UTM_CAMPAIGNS = ("spring-sale", "welcome", "black-friday", "loyalty-launch")
# (rewardId, title, value in euros, cost in points)
REWARDS = (
    ("rwd-free-coffee", "Free coffee", 2.5, 100),
    ("rwd-10-off", "10 € off your next order", 10, 250),
    ("rwd-tote-bag", "Canvas tote bag", 18.5, 400),
)
TIERS = ((800, "Gold"), (300, "Silver"), (0, "Bronze"))
SHOP = "https://shop.example.com"


class DemoError(Exception):
    """Something the service should not have done; the demo exits 1."""


# -- the traffic ------------------------------------------------------------


@dataclass
class Delivery:
    """One POST: what is sent, and what came back."""

    event_type: str | None  # the event-type header; None: left out on purpose
    body: bytes
    event_id: str | None = None  # None: invalid on purpose, 400 expected
    customer_id: str = ""
    created_at: str = ""
    late: bool = False  # held back, then delivered after newer events
    copy: bool = False  # the same delivery again (a retry)
    encoding: str = "hex"  # a style of testkit.signing
    status: int | None = None
    answer: dict[str, Any] = field(default_factory=dict)


@dataclass
class Story:
    """One customer's events, oldest first, and what their model must show."""

    customer_id: str
    email: str
    name: str
    deliveries: list[Delivery] = field(default_factory=list)
    balance: int = 0
    tier: str = ""
    wallet: str = "NONE"
    redeemed: int = 0
    refunded: int = 0
    notes: list[str] = field(default_factory=list)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ascii_name(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return plain.lower()


class StoryWriter:
    """Writes a believable customer history. The showcase customer (`full`)
    gets every event type and a few deliberately late deliveries."""

    def __init__(self, rng: random.Random, run: str, index: int, full: bool) -> None:
        self.rng = rng
        self.full = full
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{ascii_name(first)}.{ascii_name(last)}+{run}{index}@example.com"
        self.story = Story(
            str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            email,
            f"{first} {last}",
        )
        self.first, self.last = first, last
        self.t = datetime.now(UTC) - timedelta(days=rng.uniform(100, 160))
        self.utm = {
            "utmSource": rng.choice(UTM_SOURCES),
            "utmMedium": rng.choice(UTM_MEDIUMS),
            "utmCampaign": rng.choice(UTM_CAMPAIGNS),
        }
        self.campaign = str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def chance(self, p: float) -> bool:
        return self.full or self.rng.random() < p

    def count(self, lo: int, hi: int) -> int:
        return hi if self.full else self.rng.randint(lo, hi)

    def code(self, prefix: str, n: int = 6) -> str:
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        return prefix + "".join(self.rng.choice(alphabet) for _ in range(n))

    def add(
        self,
        event_type: str,
        properties: dict[str, Any],
        *,
        web: bool = False,
        campaign: bool = False,
        late: bool = False,
    ) -> Delivery:
        self.t += timedelta(minutes=self.rng.uniform(3, 24 * 60))
        event_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        body: dict[str, Any] = {"email": self.story.email, "id": event_id}
        body["customerId"] = self.story.customer_id
        if campaign:
            body["campaignId"] = self.campaign
        if web:
            body["url"] = properties.get("url", SHOP)
            body["browser"] = properties.get("browser", self.rng.choice(BROWSERS))
        body["createdAt"] = iso(self.t)
        body["properties"] = properties
        delivery = Delivery(
            event_type,
            json.dumps(body, ensure_ascii=False).encode(),
            event_id,
            self.story.customer_id,
            body["createdAt"],
            late=late,
            encoding=self.rng.choice(("hex", "HEX", "base64", "hex+prefix")),
        )
        self.story.deliveries.append(delivery)
        return delivery

    def tier_check(self, late: bool = False) -> None:
        tier = next(name for floor, name in TIERS if self.story.balance >= floor)
        if tier != self.story.tier:
            self.add(
                "Tier changed",
                {"previous": self.story.tier or None, "current": tier},
                late=late,
            )
            self.story.tier = tier

    def balance(self, amount: int, reference: str) -> None:
        before = self.story.balance
        self.story.balance += amount
        after = self.story.balance
        upcoming = [r for r in REWARDS if r[3] > after] or [REWARDS[-1]]
        props: dict[str, Any] = {"amount": amount, "reference": reference}
        if self.rng.random() < 0.6:  # the sender includes its balance, or not
            props["previousBalance"] = before
        props["pointsToNextReward"] = max(upcoming[0][3] - after, 0)
        props["nextRewardName"] = upcoming[0][1]
        self.add("Balance changed", props)

    def write(self) -> Story:
        s, rng = self.story, self.rng
        if self.chance(0.9):  # customers from before the integration have none
            self.add(
                "Customer created",
                {
                    "email": s.email,
                    "origin": rng.choice(("shopify", "pos", "web", "app")),
                    "referral": rng.choice((None, self.code("REF-"))),
                    **self.utm,
                    "firstName": self.first,
                    "lastName": self.last,
                    "phoneNumber": f"+34 6{rng.randint(10, 99)} {rng.randint(100, 999)}"
                    f" {rng.randint(100, 999)}",
                },
                campaign=True,
            )
        if self.chance(0.7):
            # The showcase's first tier arrives after its newest (Gold).
            self.tier_check(late=self.full)
            if self.full:
                s.notes.append(
                    "its first Tier changed (Bronze) arrived after the newer ones"
                )
        if self.chance(0.85):
            self.add(
                "Wallet pass requested",
                {
                    "email": s.email,
                    "referral": None,
                    "downloadLink": "https://wallet.example.com/passes/"
                    f"{uuid.UUID(int=rng.getrandbits(128), version=4)}.pkpass",
                    **self.utm,
                },
            )
            s.wallet = "REQUESTED"
            if self.chance(0.8):
                self.add("Wallet pass installed", {"referral": None, **self.utm})
                s.wallet = "INSTALLED"
        coupons: list[str] = []
        if self.chance(0.5):
            coupons.append(self.coupon("WELCOME-", "welcome-10", "campaign"))
        visits = 8 if self.full else rng.randint(1, 5)
        for visit in range(visits):
            self.visit(visit, coupons)
        if s.wallet == "INSTALLED" and self.chance(0.1):
            self.add(
                "Wallet pass uninstalled",
                {"referral": None, **self.utm},
                late=self.full,
            )
            s.wallet = "UNINSTALLED"
            if self.full:
                self.add("Wallet pass installed", {"referral": None, **self.utm})
                s.wallet = "INSTALLED"
                s.notes.append("its pass uninstall arrived after the re-install")
        if coupons and self.chance(0.15):
            self.add("Coupon pass uninstalled", {"code": coupons[0], **self.utm})
        if self.chance(0.15):
            self.add("Customer birthday", {"age": rng.randint(18, 70)})
        if not self.full:  # a few of everyone's events arrive late
            for d in s.deliveries[:-1]:
                d.late = d.late or rng.random() < 0.08
        return s

    def coupon(self, prefix: str, slug: str, source: str) -> str:
        code = self.code(prefix)
        self.add(
            "Coupon assigned",
            {
                "code": code,
                "header": "10% off your next order",
                "body": "Show this pass at the till or use the code online.",
                "slug": slug,
                "assignedFrom": source,
                "installUrl": f"https://wallet.example.com/coupons/{code}",
            },
            campaign=True,
        )
        if self.chance(0.6):
            self.add(
                "Coupon pass installed", {"code": code, "referral": None, **self.utm}
            )
        return code

    def visit(self, number: int, coupons: list[str]) -> None:
        s, rng = self.story, self.rng
        store = rng.choice(STORES)
        device = rng.choice(DEVICES)
        for _ in range(self.count(0, 1) + (not number)):
            self.add(
                "Customer scanned",
                {
                    "location": {
                        "storeId": store[0],
                        "storeName": store[1],
                        "city": store[2],
                        "lat": store[3],
                        "lng": store[4],
                    },
                    "device": device,
                },
            )
        if self.chance(0.3):
            self.add("Customer tapped", {"device": {**device, "nfc": True}})
        amount = rng.choice(
            (120, 150, 250) if self.full else (20, 35, 50, 80, 120, 150, 200)
        )
        self.balance(amount, f"order-{rng.randint(100000, 999999)}")
        self.tier_check()
        for reward_id, title, value, cost in REWARDS:
            if s.balance < cost or not self.chance(0.5):
                continue
            link = f"{SHOP}/rewards/{reward_id}"
            self.add(
                "Reward redeemable",
                {
                    "rewardId": reward_id,
                    "rewardLink": link,
                    "rewardTitle": title,
                    "rewardValue": value,
                    "rewardCost": cost,
                    "customerRemainingBalance": s.balance,
                },
            )
            if not (self.chance(0.4) and (not self.full or s.redeemed < 2)):
                continue
            claim = f"clm_{rng.getrandbits(48):012x}" if self.chance(0.8) else None
            # The showcase's first redemption is refunded and arrives late.
            refund = claim is not None and self.chance(0.25) and s.refunded == 0
            props = {
                "rewardId": reward_id,
                "rewardLink": link,
                "rewardTitle": title,
                "code": self.code("RDM-"),
            }
            if claim:
                props["claimId"] = claim
            self.add("Reward redeemed", props, late=self.full and refund)
            s.redeemed += 1
            self.balance(-cost, f"redeem-{claim or props['code']}")
            if refund:
                self.add("Reward refunded", {"claimId": claim})
                s.refunded += 1
                self.balance(cost, f"refund-{claim}")
                if self.full:
                    s.notes.append("a redemption arrived after its refund")
            break
        if number == 1 and self.chance(0.2):
            code = self.code("GC-", 8)
            self.add(
                "Gift card sent",
                {
                    "code": code,
                    "header": "A 25 € gift card, from us",
                    "body": "Thanks for being with us. Spend it in any store.",
                    "slug": "gift-card-25",
                    "assignedFrom": "campaign",
                    "installUrl": f"https://wallet.example.com/gift-cards/{code}",
                    "mailSent": rng.random() < 0.8,
                },
                campaign=True,
            )
        if number == 2 and self.chance(0.3):
            coupons.append(self.coupon("SPRING-", "spring-15", "reward"))
        for _ in range(self.count(0, 1)):
            url = f"{SHOP}/collections/{rng.choice(('new', 'sale', 'coffee'))}"
            self.add(
                "Wallet click",
                {"url": url, "browser": rng.choice(BROWSERS), **self.utm},
                web=True,
            )
        for _ in range(self.count(0, 1)):
            page = rng.choice((("Store locator", "stores"), ("My rewards", "rewards")))
            self.add(
                "Wallet visit",
                {
                    "name": page[0],
                    "url": f"{SHOP}/{page[1]}",
                    "browser": rng.choice(BROWSERS),
                    "referral": None,
                    **self.utm,
                },
                web=True,
            )


def invalid_deliveries(rng: random.Random, customer_id: str) -> list[Delivery]:
    """Signed but unusable: each must be answered 400 and quarantined."""
    now = iso(datetime.now(UTC))

    def body(**fields: Any) -> bytes:
        return json.dumps(fields).encode()

    def eid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

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


def plan(
    customers: int, run: str, rng: random.Random
) -> tuple[list[Story], list[Delivery], list[Delivery], Delivery]:
    """The stories, then the deliveries of the two rounds: on time (with a few
    retries racing their original), then late ones, retries and the odd
    ones. Returns the poison delivery too."""
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
    victim = stories[1 % len(stories)]
    poison_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    poison = Delivery(
        "Balance changed",
        json.dumps(
            {
                "email": victim.email,
                "id": poison_id,
                "customerId": victim.customer_id,
                "createdAt": iso(datetime.now(UTC) - timedelta(days=1)),
                "properties": {"amount": "lots", "reference": "manual-adjustment"},
            }
        ).encode(),
        poison_id,
        victim.customer_id,
    )
    other = stories[2 % len(stories)]
    unknown_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    unknown = Delivery(
        UNKNOWN_TYPE,
        json.dumps(
            {
                "id": unknown_id,
                "customerId": other.customer_id,
                "createdAt": iso(datetime.now(UTC)),
                "properties": {"mergedInto": other.customer_id},
            }
        ).encode(),
        unknown_id,
        other.customer_id,
    )
    second = [
        *late,
        *retries,
        *invalid_deliveries(rng, victim.customer_id),
        poison,
        unknown,
    ]
    rng.shuffle(second)
    return stories, on_time, second, poison


# -- talking to the service --------------------------------------------------


async def deliver(
    url: str, secret: bytes, rounds: list[list[Delivery]], concurrency: int
) -> None:
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        gate = asyncio.Semaphore(concurrency)
        total = sum(len(r) for r in rounds)
        done = 0
        show = total > 1 and sys.stdout.isatty()

        async def one(d: Delivery) -> None:
            headers = {
                "content-type": "application/json",
                "user-agent": "JeriCommerce-Webhooks/1.0 (loyalty demo)",
                SIGNATURE_HEADER: sign(d.body, secret, d.encoding),
            }
            if d.event_type is not None:
                headers[EVENT_TYPE_HEADER] = d.event_type
            nonlocal done
            async with gate:
                try:
                    r = await client.post(url, content=d.body, headers=headers)
                except httpx.HTTPError as e:
                    r = None
                    d.answer = {"error": f"{type(e).__name__}: {e}"}
            done += 1
            if show and (done % 100 == 0 or done == total):
                end = "\n" if done == total else ""
                print(f"\r  {done}/{total} sent", end=end, flush=True)
            if r is None:
                return
            d.status = r.status_code
            try:
                d.answer = r.json()
            except ValueError:
                d.answer = {"error": r.text[:200]}

        for deliveries in rounds:
            await asyncio.gather(*(one(d) for d in deliveries))


def check_answers(deliveries: list[Delivery]) -> None:
    """Every answer as docs/webhooks.md says, or DemoError naming the first few."""
    if any(d.status == 401 for d in deliveries):
        raise DemoError(
            "the service answered 401: it runs with another WEBHOOK_SECRET. "
            "Run the demo with the service's secret in WEBHOOK_SECRET."
        )
    problems = []
    by_id: dict[str, list[Delivery]] = defaultdict(list)
    for d in deliveries:
        expected = 400 if d.event_id is None else 200
        if d.status != expected:
            problems.append(
                f"{d.event_type or '(no type)'} {d.event_id or '(invalid)'}: "
                f"expected {expected}, got {d.status} {d.answer}"
            )
        elif d.event_id is not None:
            by_id[d.event_id].append(d)
    for event_id, copies in by_id.items():
        statuses = sorted(c.answer.get("status", "?") for c in copies)
        positions = {c.answer.get("position") for c in copies}
        if statuses != ["accepted"] + ["duplicate"] * (len(copies) - 1):
            problems.append(f"event {event_id}: answered {statuses}")
        if len(positions) != 1 or not isinstance(next(iter(positions)), int):
            problems.append(
                f"event {event_id}: positions {sorted(map(str, positions))}"
            )
    if problems:
        shown = "\n  ".join(problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise DemoError(f"{len(problems)} unexpected answer(s):\n  {shown}{more}")


def check_models(stories: list[Story], customers: dict[str, Any]) -> None:
    problems = []
    for s in stories:
        c = customers[s.customer_id]
        want = {
            "points_balance": s.balance,
            "tier": s.tier,
            "event_count": len(s.deliveries),
            "wallet_pass": s.wallet,
            "refunded": s.refunded,
        }
        got = {
            "points_balance": c.points_balance,
            "tier": c.tier.current,
            "event_count": c.event_count,
            "wallet_pass": customer_pb2.WalletPassStatus.Name(
                c.wallet_pass.status
            ).removeprefix("WALLET_PASS_STATUS_"),
            "refunded": sum(r.refunded for r in c.redeemed_rewards),
        }
        for key in want:
            if want[key] != got[key]:
                problems.append(
                    f"{s.customer_id}: {key} is {got[key]!r}, expected {want[key]!r}"
                )
    if problems:
        raise DemoError(
            "read models differ from what was sent:\n  " + "\n  ".join(problems[:10])
        )


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# -- starting the service ----------------------------------------------------


def answering(url: str) -> bool:
    try:
        httpx.get(url + "/healthz", timeout=1)
    except httpx.HTTPError:
        return False
    return True


def start_service(base: str, data_dir: Path, secret_env: dict[str, str]) -> int:
    log_path, pid_path = data_dir / "demo-service.log", data_dir / "demo-service.pid"
    env = {**secret_env, "DATA_DIR": str(data_dir.resolve())}
    argv = [sys.executable, "-m", "service", "run"]
    # In its own session: it outlives the demo, and Ctrl-C in it.
    proc = spawn(argv, log_path, env, new_session=True)
    pid_path.write_text(f"{proc.pid}\n")
    print(f"Starting the service (pid {proc.pid}, log {log_path}) ...", flush=True)

    def tail() -> str:
        lines = log_path.read_text(errors="replace").splitlines()[-15:]
        return f"the end of {log_path}:\n" + "\n".join(lines)

    try:
        wait_until(lambda: http_ok(base + "/readyz"), proc, START_TIMEOUT, tail, 0.1)
    except NotReady as e:
        if proc.poll() is not None:
            pid_path.unlink(missing_ok=True)
        raise DemoError(f"the service {e}") from None
    return proc.pid


def wait_ready(base: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(base + "/readyz", timeout=2)
            if answer.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise DemoError(f"{base}/readyz did not answer 200 within {START_TIMEOUT:.0f} s")


def local(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


# -- the tour ----------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_environ(require_secret=False)
    except ConfigError as e:
        print(f"demo: {e}", file=sys.stderr)
        return 2
    secret_env: dict[str, str] = {}
    if settings.webhook_secrets:
        secret = settings.webhook_secrets[0]
    else:
        secret = DEMO_SECRET.encode()
        secret_env["WEBHOOK_SECRET"] = DEMO_SECRET
        print(f'WEBHOOK_SECRET is not set: the demo signs with "{DEMO_SECRET}".')
    customers = args.customers or (30 if args.quick else 300)
    if customers < 1:
        print("demo: --customers must be at least 1", file=sys.stderr)
        return 2
    http_host, grpc_host = local(settings.http_host), local(settings.grpc_host)
    base = f"http://{http_host}:{settings.http_port}"
    grpc_target = f"{grpc_host}:{settings.grpc_port}"

    started: int | None = None
    if answering(base):
        print(f"A service is already answering on {base}: the demo uses it.")
        wait_ready(base)
    else:
        if settings.database_url:
            print("DATABASE_URL is set: the service will use PostgreSQL.")
        started = start_service(base, settings.data_dir, secret_env)
        print(f"Ready: webhooks on {base}, gRPC on {grpc_target}.")

    rng = random.Random()
    run_tag = f"{rng.getrandbits(16):04x}"
    stories, on_time, second, poison = plan(customers, run_tag, rng)
    everything = [*on_time, *second]

    channel = grpc.insecure_channel(grpc_target)
    try:
        grpc.channel_ready_future(channel).result(timeout=10)
    except grpc.FutureTimeoutError:
        raise DemoError(f"nothing answers gRPC on {grpc_target}") from None
    with channel:
        projections = pgrpc.ProjectionServiceStub(channel)
        customers_api = cgrpc.CustomerServiceStub(channel)
        before = projections.GetProjectionStatus(
            ppb.GetProjectionStatusRequest(), timeout=10
        )

        print(
            f"Sending {len(everything)} signed webhooks for {customers} customers "
            f"over {CONCURRENCY} connections ...",
            flush=True,
        )
        url = base + WEBHOOK_PATH
        began = time.perf_counter()
        # The first alone (a wrong secret fails fast), then two rounds.
        asyncio.run(deliver(url, secret, [on_time[:1]], 1))
        check_answers(on_time[:1])
        asyncio.run(deliver(url, secret, [on_time[1:], second], CONCURRENCY))
        took = time.perf_counter() - began
        check_answers(everything)
        highest = max(d.answer["position"] for d in everything if d.event_id)

        ids = [s.customer_id for s in stories]
        found: dict[str, Any] = {}
        for part in chunks(ids, 1000):
            answer = customers_api.BatchGetCustomers(
                cpb.BatchGetCustomersRequest(customer_ids=part, min_position=highest),
                timeout=READ_TIMEOUT,
            )
            found.update((c.customer_id, c) for c in answer.customers)
        check_models(stories, found)
        showcase = customers_api.GetCustomer(
            cpb.GetCustomerRequest(
                customer_id=stories[0].customer_id, min_position=highest
            ),
            timeout=READ_TIMEOUT,
        )
        status = projections.GetProjectionStatus(
            ppb.GetProjectionStatusRequest(), timeout=10
        )
        head = egrpc.EventServiceStub(channel).GetHeadPosition(
            epb.GetHeadPositionRequest(), timeout=10
        )
    dead = status.dead_letters - before.dead_letters
    if dead < 1:
        raise DemoError(
            f"the poison event (position {poison.answer['position']}) was not "
            "dead-lettered"
        )
    if status.applied_position < highest:
        raise DemoError(
            f"projections applied {status.applied_position} < {highest} after "
            "GetCustomer waited for it"
        )

    sent = Counter(d.event_type for d in everything if d.event_id and not d.copy)
    answers = Counter(d.answer.get("status") for d in everything if d.status == 200)
    summary = [
        (
            "deliveries",
            len(everything),
            f"in {took:.1f} s over {CONCURRENCY} connections",
        ),
        ("accepted", answers["accepted"], "each event stored once, durably"),
        ("duplicates", answers["duplicate"], "retries: the first copy's position"),
        ("out of order", sum(d.late for d in everything), "older after newer"),
        ("rejected 400", sum(d.status == 400 for d in everything), "quarantined"),
        ("event types", sum(1 for t in EVENT_TYPES if sent[t]), "of 18 sent"),
        ("unknown type", sent[UNKNOWN_TYPE], f'"{UNKNOWN_TYPE}": kept for replay'),
        ("customers", len(found), "read back over gRPC, all as sent"),
        ("poison", 1, f'amount "lots", position {poison.answer["position"]}'),
        ("head position", head.position, "EventService.GetHeadPosition"),
        ("applied", status.applied_position, "ProjectionService.GetProjectionStatus"),
        ("lag", status.lag, "events stored but not yet applied"),
        ("dead letters", status.dead_letters, f"+{dead} (the poison)"),
    ]
    print("\nSummary")
    for label, value, note in summary:
        print(f"  {label:<14}{value:>7}  {note}")
    print("\nSent, by event type (first copies):")
    cells = [f"{t:<24}{sent[t]:>4}" for t in EVENT_TYPES]
    for row in range(0, len(cells), 3):
        print("  " + "   ".join(cells[row : row + 3]))

    s = stories[0]
    print(
        f"\nOne customer, {s.name} <{s.email}>, read over gRPC with "
        f"CustomerService.GetCustomer(min_position={highest}):"
    )
    for note in s.notes:
        print(f"  ({note}: the model is the same as in order)")
    print(
        json_format.MessageToJson(
            showcase,
            preserving_proto_field_name=True,
            indent=2,
            ensure_ascii=False,
            unquote_int64_if_possible=True,
        )
    )

    cli = cli_prefix(settings)
    request = json.dumps({"customer_id": s.customer_id, "min_position": highest})
    print("\nNext steps:")
    print(f"  {cli} customer {s.email}")
    print(f"  curl -s {base}/metrics | grep loyalty_")
    print(
        f"  grpcurl -plaintext -d {shlex.quote(request)} {grpc_target} "
        "jericommerce.loyalty.v1.CustomerService/GetCustomer"
    )
    print(
        "  More: the CLI's status, events, quarantine list and dead-letters list;"
        " docs/runbook.md."
    )
    if started is not None:
        pid_file = shlex.quote(str(settings.data_dir / "demo-service.pid"))
        print(
            f"\nThe service keeps running (pid {started}, log "
            f"{settings.data_dir / 'demo-service.log'}). Stop it with:\n"
            f"  kill $(cat {pid_file})"
        )
    else:
        print(f"\nThe demo used the service already running on {base}, and left it.")
    return 0


def cli_prefix(settings: Settings) -> str:
    """How to run the CLI against the same store, from the current directory."""
    python = Path(sys.executable)
    try:
        shown = str(python.relative_to(Path.cwd()))
    except ValueError:
        shown = str(python)
    env = []
    if not settings.database_url and "DATA_DIR" in os.environ:
        env.append(f"DATA_DIR={shlex.quote(os.environ['DATA_DIR'])}")
    return " ".join([*env, shlex.quote(shown), "-m", "service"])


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Start the loyalty service if needed, send it realistic "
        "signed JeriCommerce traffic and show what it made of it."
    )
    parser.add_argument(
        "--quick", action="store_true", help="30 customers instead of 300"
    )
    parser.add_argument("--customers", type=int, help="how many customers to invent")
    args = parser.parse_args()
    try:
        return run(args)
    except DemoError as e:
        print(f"\ndemo: FAILED: {e}", file=sys.stderr)
        return 1
    except grpc.RpcError as e:
        print(f"\ndemo: FAILED: gRPC {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
