"""Realistic, signed webhooks: a mix over the 18 event types.

Deterministic for a given seed. Ids are unique per `tag`, so every run can
make fresh, never-seen events. Customers are created (`Customer created`) at
evenly spaced events over the first `spread` events of the stream; every
other event goes to a customer created before it, chosen at random, with a
type chosen by weight and the properties the sender documents for it. So
older customers have longer histories, as in a real programme.
"""

from __future__ import annotations

import bisect
import itertools
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from projections.events import EventType as T
from testkit.signing import sign

EPOCH = 1_735_689_600  # 2025-01-01T00:00:00Z

# Relative frequency of each type after a customer's creation.
WEIGHTS: dict[T, int] = {
    T.BALANCE_CHANGED: 20,
    T.CUSTOMER_SCANNED: 9,
    T.CUSTOMER_TAPPED: 7,
    T.WALLET_CLICK: 8,
    T.WALLET_VISIT: 8,
    T.COUPON_ASSIGNED: 6,
    T.COUPON_PASS_INSTALLED: 5,
    T.COUPON_PASS_UNINSTALLED: 2,
    T.REWARD_REDEEMABLE: 6,
    T.REWARD_REDEEMED: 4,
    T.REWARD_REFUNDED: 1,
    T.TIER_CHANGED: 3,
    T.WALLET_PASS_REQUESTED: 3,
    T.WALLET_PASS_INSTALLED: 3,
    T.WALLET_PASS_UNINSTALLED: 1,
    T.GIFT_CARD_SENT: 2,
    T.CUSTOMER_BIRTHDAY: 1,
    T.CUSTOMER_CREATED: 1,  # a re-sent creation, now and then
}
_TYPES = list(WEIGHTS)
_CUM = list(itertools.accumulate(WEIGHTS.values()))
TIERS = ("Bronze", "Silver", "Gold", "Platinum")
UTM = {"utmSource": "newsletter", "utmMedium": "email", "utmCampaign": "spring"}


@dataclass(frozen=True, slots=True)
class Webhook:
    type_name: str
    customer_id: str
    body: bytes

    def signature(self, secret: str) -> str:
        return sign(self.body, secret)


def customer_id(n: int) -> str:
    return f"cus-{n:07d}"


def _props(t: T, rng: random.Random, cid: str, seq: int) -> dict[str, Any]:
    n = rng.randrange(4)
    if t is T.CUSTOMER_CREATED:
        return {
            "email": f"{cid}@example.com",
            "origin": "shopify",
            "referral": f"ref-{seq % 97}",
            "firstName": "Ana",
            "lastName": f"Garcia {seq % 1000}",
            "phoneNumber": f"+3460{seq % 10**7:07d}",
            **UTM,
        }
    if t is T.CUSTOMER_BIRTHDAY:
        return {"age": 18 + seq % 60}
    if t is T.CUSTOMER_SCANNED:
        return {"location": {"lat": 40.4, "lng": -3.7}, "device": "iPhone"}
    if t is T.CUSTOMER_TAPPED:
        return {"device": {"os": "Android", "model": "Pixel 8"}}
    if t is T.WALLET_PASS_REQUESTED:
        link = f"https://pass.example.com/{cid}"
        return {"email": f"{cid}@example.com", "downloadLink": link, **UTM}
    if t in (T.WALLET_PASS_INSTALLED, T.WALLET_PASS_UNINSTALLED):
        return {"referral": "qr", **UTM}
    if t is T.BALANCE_CHANGED:
        return {
            "amount": rng.choice((10, 25, 50, 100, -20)),
            "reference": f"order-{seq}",
            "pointsToNextReward": 100 + n * 50,
            "nextRewardName": "Free coffee",
        }
    if t is T.TIER_CHANGED:
        return {"previous": TIERS[n], "current": TIERS[(n + 1) % 4]}
    if t is T.COUPON_ASSIGNED:
        return {
            "code": f"CP-{cid}-{n}",
            "header": "10% off",
            "body": "On your next order",
            "slug": "ten-off",
            "assignedFrom": "campaign",
            "installUrl": f"https://pass.example.com/c/{cid}/{n}",
        }
    if t in (T.COUPON_PASS_INSTALLED, T.COUPON_PASS_UNINSTALLED):
        return {"code": f"CP-{cid}-{n}", "referral": "email", **UTM}
    if t is T.GIFT_CARD_SENT:
        return {
            "code": f"GC-{seq}",
            "header": "Gift card",
            "body": "25 EUR",
            "slug": "gift-25",
            "assignedFrom": "admin",
            "installUrl": f"https://pass.example.com/g/{seq}",
            "mailSent": n % 2 == 0,
        }
    if t is T.REWARD_REDEEMABLE:
        return {
            "rewardId": f"rw-{n}",
            "rewardLink": f"https://shop.example.com/r/{n}",
            "rewardTitle": "Free coffee",
            "rewardValue": 5,
            "rewardCost": 100 * (n + 1),
            "customerRemainingBalance": 40 * n,
        }
    if t is T.REWARD_REDEEMED:
        return {
            "rewardId": f"rw-{n}",
            "rewardLink": f"https://shop.example.com/r/{n}",
            "rewardTitle": "Free coffee",
            "code": f"RD-{seq}",
            "claimId": f"cl-{cid}-{n}",
        }
    if t is T.REWARD_REFUNDED:
        return {"claimId": f"cl-{cid}-{n}"}
    if t is T.WALLET_CLICK:
        return {"url": "https://shop.example.com/", "browser": "Chrome 120", **UTM}
    return {  # WALLET_VISIT
        "name": "Home",
        "url": "https://shop.example.com/",
        "browser": "Safari 17",
        "referral": "wallet",
        **UTM,
    }


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
    be made in pieces. The customers are created over its first `spread`
    events (default `customers`: the first events create them all).
    """
    spread = max(spread or customers, customers)
    rng = random.Random(f"{seed}:{tag}:{offset}")
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    for seq in range(offset, offset + count):
        made = min(-(-seq * customers // spread), customers)  # created before seq
        if seq < spread and -(-(seq + 1) * customers // spread) > made:
            n, t = made, T.CUSTOMER_CREATED
        else:
            n = rng.randrange(max(made, 1))
            t = _TYPES[bisect.bisect_right(_CUM, rng.randrange(_CUM[-1]))]
        cid = customer_id(n)
        when = time.gmtime(EPOCH + seq * 7 + rng.randrange(7))
        body: dict[str, Any] = {
            "id": f"{tag}-{seq:08d}",
            "customerId": cid,
            "email": f"{cid}@example.com",
            "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", when),
            "properties": _props(t, rng, cid, seq),
        }
        if seq % 3 == 0:
            body["campaignId"] = f"cmp-{seq % 11}"
        yield Webhook(t.value, cid, dumps(body).encode())
