"""Believable customer histories, in the order a life in the programme goes:
created, a pass, visits with scans and purchases, tiers earned by points,
rewards redeemed (now and then refunded), coupons, a birthday. Used by the
demo, which checks each customer's read model against what `Story` expects.

The showcase customer (`full=True`) gets every event type and a few
deliberately late deliveries.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from projections.events import EventType as T
from testkit.signing import STYLES
from testkit.traffic.catalogue import DEVICES, REWARDS, STORES, TIER_FLOORS
from testkit.traffic.customers import Customer, new_customer, uuid4
from testkit.traffic.webhook import Webhook, make


@dataclass
class Delivery:
    """One POST: what is sent, and what came back."""

    event_type: str | None  # the event-type header; None: left out on purpose
    body: bytes
    event_id: str | None = None  # None: invalid on purpose, 400 expected
    customer_id: str = ""
    late: bool = False  # held back, then delivered after newer events
    copy: bool = False  # the same delivery again (a retry)
    encoding: str = "hex"  # a style of testkit.signing
    status: int | None = None
    answer: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, hook: Webhook, rng: random.Random, late: bool = False) -> Delivery:
        style = rng.choice(STYLES[:4])
        return cls(
            hook.type_name, hook.body, hook.id, hook.customer_id, late, False, style
        )


@dataclass
class Story:
    """One customer's events, oldest first, and what their model must show."""

    customer: Customer
    deliveries: list[Delivery] = field(default_factory=list)
    redeemed: int = 0
    refunded: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def customer_id(self) -> str:
        return self.customer.id

    @property
    def email(self) -> str:
        return self.customer.email

    @property
    def name(self) -> str:
        return self.customer.name

    @property
    def balance(self) -> int:
        return self.customer.balance

    @property
    def tier(self) -> str:
        return self.customer.tier or ""

    @property
    def wallet(self) -> str:
        return self.customer.wallet


class StoryWriter:
    def __init__(self, rng: random.Random, run: str, index: int, full: bool) -> None:
        self.rng = rng
        self.full = full
        self.story = Story(new_customer(rng, email_tag=f"{run}{index}"))
        self.t = datetime.now(UTC) - timedelta(days=rng.uniform(100, 160))
        self.n = 0

    def chance(self, p: float) -> bool:
        return self.full or self.rng.random() < p

    def count(self, lo: int, hi: int) -> int:
        return hi if self.full else self.rng.randint(lo, hi)

    def add(self, kind: T, *, late: bool = False, **given: Any) -> Delivery:
        self.t += timedelta(minutes=self.rng.uniform(3, 24 * 60))
        self.n += 1
        hook = make(
            self.rng,
            self.story.customer,
            kind,
            self.n,
            event_id=uuid4(self.rng),
            created_at=self.t,
            **given,
        )
        delivery = Delivery.of(hook, self.rng, late)
        self.story.deliveries.append(delivery)
        return delivery

    def tier_check(self, late: bool = False) -> None:
        s = self.story
        tier = next(name for floor, name in TIER_FLOORS if s.balance >= floor)
        if tier != s.tier:
            self.add(T.TIER_CHANGED, current=tier, late=late)

    def write(self) -> Story:
        s, rng = self.story, self.rng
        if self.chance(0.9):  # customers from before the integration have none
            self.add(T.CUSTOMER_CREATED)
        if self.chance(0.7):
            # The showcase's first tier arrives after its newest (Gold).
            self.tier_check(late=self.full)
            if self.full:
                s.notes.append(
                    "its first Tier changed (Bronze) arrived after the newer ones"
                )
        if self.chance(0.85):
            self.add(T.WALLET_PASS_REQUESTED)
            if self.chance(0.8):
                self.add(T.WALLET_PASS_INSTALLED)
        coupons: list[str] = []
        if self.chance(0.5):
            coupons.append(self.coupon("WELCOME-", "welcome-10", "campaign"))
        visits = 8 if self.full else rng.randint(1, 5)
        for visit in range(visits):
            self.visit(visit, coupons)
        if s.wallet == "INSTALLED" and self.chance(0.1):
            self.add(T.WALLET_PASS_UNINSTALLED, late=self.full)
            if self.full:
                self.add(T.WALLET_PASS_INSTALLED)
                s.notes.append("its pass uninstall arrived after the re-install")
        if coupons and self.chance(0.15):
            self.add(T.COUPON_PASS_UNINSTALLED, code=coupons[0])
        if self.chance(0.15):
            self.add(T.CUSTOMER_BIRTHDAY)
        if not self.full:  # a few of everyone's events arrive late
            for d in s.deliveries[:-1]:
                d.late = d.late or rng.random() < 0.08
        return s

    def coupon(self, prefix: str, slug: str, source: str) -> str:
        self.add(T.COUPON_ASSIGNED, prefix=prefix, slug=slug, source=source)
        code = self.story.customer.coupons[-1]
        if self.chance(0.6):
            self.add(T.COUPON_PASS_INSTALLED, code=code)
        return code

    def visit(self, number: int, coupons: list[str]) -> None:
        s, rng = self.story, self.rng
        store, device = rng.choice(STORES), rng.choice(DEVICES)
        for _ in range(self.count(0, 1) + (not number)):
            self.add(T.CUSTOMER_SCANNED, store=store, device=device)
        if self.chance(0.3):
            self.add(T.CUSTOMER_TAPPED, device=device)
        amount = rng.choice(
            (120, 150, 250) if self.full else (20, 35, 50, 80, 120, 150, 200)
        )
        self.add(T.BALANCE_CHANGED, amount=amount)
        self.tier_check()
        for reward_id, _, _, cost in REWARDS:
            if s.balance < cost or not self.chance(0.5):
                continue
            self.add(T.REWARD_REDEEMABLE, reward=reward_id)
            if not (self.chance(0.4) and (not self.full or s.redeemed < 2)):
                continue
            claims = len(s.customer.claims)
            redeemed = self.add(
                T.REWARD_REDEEMED, reward=reward_id, claim=self.chance(0.8)
            )
            claim = s.customer.claims[-1] if len(s.customer.claims) > claims else None
            # The showcase's first redemption is refunded and arrives late.
            refund = claim is not None and self.chance(0.25) and s.refunded == 0
            redeemed.late = self.full and refund
            s.redeemed += 1
            reference = f"redeem-{claim or redeemed.event_id}"
            self.add(T.BALANCE_CHANGED, amount=-cost, reference=reference)
            if refund:
                self.add(T.REWARD_REFUNDED, claim=claim)
                s.refunded += 1
                self.add(T.BALANCE_CHANGED, amount=cost, reference=f"refund-{claim}")
                if self.full:
                    s.notes.append("a redemption arrived after its refund")
            break
        if number == 1 and self.chance(0.2):
            self.add(T.GIFT_CARD_SENT)
        if number == 2 and self.chance(0.3):
            coupons.append(self.coupon("SPRING-", "spring-15", "reward"))
        for _ in range(self.count(0, 1)):
            self.add(T.WALLET_CLICK)
        for _ in range(self.count(0, 1)):
            self.add(T.WALLET_VISIT)
