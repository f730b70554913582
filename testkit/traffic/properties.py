"""The properties of each of the 18 event types, as JeriCommerce documents
them (docs/webhooks.md): the one place that says what each type carries.

`properties(kind, customer, rng, n)` draws realistic values from the
customer's past and the catalogue and updates what the sender knows about the
customer (balance, tier, coupons, claims, pass status). A scenario that needs
a particular value passes it by name (`amount=`, `code=`, `reward=` ...);
everything else is drawn. `n` is the event's number in its stream, for
references that must not repeat.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from projections.events import EventType as T
from testkit.traffic.catalogue import (
    AMOUNTS,
    BROWSERS,
    CODE_ALPHABET,
    DEVICES,
    ORIGINS,
    REWARDS,
    SHOP,
    STORES,
    TIERS,
    WALLET,
)
from testkit.traffic.customers import Customer, uuid4

Props = dict[str, Any]
Builder = Callable[..., Props]


def code(rng: random.Random, prefix: str, length: int = 6) -> str:
    return prefix + "".join(rng.choice(CODE_ALPHABET) for _ in range(length))


def customer_created(c: Customer, rng: random.Random, n: int) -> Props:
    c.created = True
    return {
        "email": c.email,
        "origin": rng.choice(ORIGINS),
        "referral": rng.choice((None, code(rng, "REF-"))),
        **c.utm,
        "firstName": c.first_name,
        "lastName": c.last_name,
        "phoneNumber": f"+34 6{rng.randint(10, 99)} {rng.randint(100, 999)}"
        f" {rng.randint(100, 999)}",
    }


def customer_birthday(c: Customer, rng: random.Random, n: int) -> Props:
    return {"age": rng.randint(18, 75)}


def customer_scanned(
    c: Customer,
    rng: random.Random,
    n: int,
    *,
    store: tuple[str, str, str, float, float] | None = None,
    device: dict[str, str] | None = None,
) -> Props:
    store_id, name, city, lat, lng = store or rng.choice(STORES)
    location = {"storeId": store_id, "storeName": name, "city": city}
    return {
        "location": {**location, "lat": lat, "lng": lng},
        "device": device or rng.choice(DEVICES),
    }


def customer_tapped(
    c: Customer, rng: random.Random, n: int, *, device: dict[str, str] | None = None
) -> Props:
    return {"device": {**(device or rng.choice(DEVICES)), "nfc": True}}


def wallet_pass_requested(c: Customer, rng: random.Random, n: int) -> Props:
    c.wallet = "REQUESTED"
    return {
        "email": c.email,
        "referral": None,
        "downloadLink": f"{WALLET}/passes/{uuid4(rng)}.pkpass",
        **c.utm,
    }


def wallet_pass_installed(c: Customer, rng: random.Random, n: int) -> Props:
    c.wallet = "INSTALLED"
    return {"referral": None, **c.utm}


def wallet_pass_uninstalled(c: Customer, rng: random.Random, n: int) -> Props:
    c.wallet = "UNINSTALLED"
    return {"referral": None, **c.utm}


def balance_changed(
    c: Customer,
    rng: random.Random,
    n: int,
    *,
    amount: int | None = None,
    reference: str | None = None,
) -> Props:
    if amount is None:
        amount = rng.choice(AMOUNTS)
    before, c.balance = c.balance, c.balance + amount
    upcoming = [r for r in REWARDS if r[3] > c.balance] or [REWARDS[-1]]
    props: Props = {"amount": amount, "reference": reference or f"order-{n}"}
    if rng.random() < 0.6:  # the sender includes the balance before, or not
        props["previousBalance"] = before
    props["pointsToNextReward"] = max(upcoming[0][3] - c.balance, 0)
    props["nextRewardName"] = upcoming[0][1]
    return props


def tier_changed(
    c: Customer, rng: random.Random, n: int, *, current: str | None = None
) -> Props:
    if current is None:  # up more often than down
        at = TIERS.index(c.tier) if c.tier else 0
        step = rng.choice((1, 1, -1)) if c.tier else 0
        current = TIERS[max(0, min(len(TIERS) - 1, at + step))]
    props = {"previous": c.tier, "current": current}
    c.tier = current
    return props


def coupon_assigned(
    c: Customer,
    rng: random.Random,
    n: int,
    *,
    prefix: str = "CPN-",
    slug: str = "ten-off",
    source: str | None = None,
) -> Props:
    coupon = code(rng, prefix)
    c.coupons.append(coupon)
    return {
        "code": coupon,
        "header": "10% off your next order",
        "body": "Show this pass at the till or use the code online.",
        "slug": slug,
        "assignedFrom": source or rng.choice(("campaign", "manual", "reward")),
        "installUrl": f"{WALLET}/coupons/{coupon}",
    }


def _coupon_pass(c: Customer, rng: random.Random, given: str | None) -> Props:
    props: Props = {"referral": None, **c.utm}
    if given or (c.coupons and rng.random() < 0.9):  # a few name no coupon
        props["code"] = given or rng.choice(c.coupons)
    return props


def coupon_pass_installed(
    c: Customer, rng: random.Random, n: int, *, code: str | None = None
) -> Props:
    return _coupon_pass(c, rng, code)


def coupon_pass_uninstalled(
    c: Customer, rng: random.Random, n: int, *, code: str | None = None
) -> Props:
    return _coupon_pass(c, rng, code)


def gift_card_sent(c: Customer, rng: random.Random, n: int) -> Props:
    card = code(rng, "GC-", 8)
    return {
        "code": card,
        "header": "A 25 € gift card, from us",
        "body": "Thanks for being with us. Spend it in any store.",
        "slug": "gift-card-25",
        "assignedFrom": "campaign",
        "installUrl": f"{WALLET}/gift-cards/{card}",
        "mailSent": rng.random() < 0.8,
    }


def _reward(rng: random.Random, reward_id: str | None) -> tuple[str, str, float, int]:
    return next((r for r in REWARDS if r[0] == reward_id), None) or rng.choice(REWARDS)


def reward_redeemable(
    c: Customer, rng: random.Random, n: int, *, reward: str | None = None
) -> Props:
    reward_id, title, value, cost = _reward(rng, reward)
    c.rewards.append(reward_id)
    return {
        "rewardId": reward_id,
        "rewardLink": f"{SHOP}/rewards/{reward_id}",
        "rewardTitle": title,
        "rewardValue": value,
        "rewardCost": cost,
        "customerRemainingBalance": c.balance,
    }


def reward_redeemed(
    c: Customer,
    rng: random.Random,
    n: int,
    *,
    reward: str | None = None,
    claim: bool | None = None,
) -> Props:
    """`claim`: whether the sender gives a claim id (most do)."""
    if reward is None and c.rewards:
        reward = rng.choice(c.rewards)
    reward_id, title, _, _ = _reward(rng, reward)
    props: Props = {
        "rewardId": reward_id,
        "rewardLink": f"{SHOP}/rewards/{reward_id}",
        "rewardTitle": title,
        "code": code(rng, "RDM-"),
    }
    gives_claim = rng.random() < 0.8 if claim is None else claim
    if gives_claim:
        props["claimId"] = f"clm_{rng.getrandbits(48):012x}"
        c.claims.append(props["claimId"])
    return props


def reward_refunded(
    c: Customer, rng: random.Random, n: int, *, claim: str | None = None
) -> Props:
    # Now and then a refund of a claim the sender never told us about.
    return {"claimId": claim or (rng.choice(c.claims) if c.claims else f"clm_x{n}")}


def wallet_click(c: Customer, rng: random.Random, n: int) -> Props:
    url = f"{SHOP}/collections/{rng.choice(('new', 'sale', 'coffee'))}"
    return {"url": url, "browser": rng.choice(BROWSERS), **c.utm}


def wallet_visit(c: Customer, rng: random.Random, n: int) -> Props:
    page, path = rng.choice((("Store locator", "stores"), ("My rewards", "rewards")))
    return {
        "name": page,
        "url": f"{SHOP}/{path}",
        "browser": rng.choice(BROWSERS),
        "referral": None,
        **c.utm,
    }


BUILDERS: dict[T, Builder] = {
    T.CUSTOMER_CREATED: customer_created,
    T.CUSTOMER_BIRTHDAY: customer_birthday,
    T.CUSTOMER_SCANNED: customer_scanned,
    T.CUSTOMER_TAPPED: customer_tapped,
    T.WALLET_PASS_REQUESTED: wallet_pass_requested,
    T.WALLET_PASS_INSTALLED: wallet_pass_installed,
    T.WALLET_PASS_UNINSTALLED: wallet_pass_uninstalled,
    T.BALANCE_CHANGED: balance_changed,
    T.TIER_CHANGED: tier_changed,
    T.COUPON_ASSIGNED: coupon_assigned,
    T.COUPON_PASS_INSTALLED: coupon_pass_installed,
    T.COUPON_PASS_UNINSTALLED: coupon_pass_uninstalled,
    T.GIFT_CARD_SENT: gift_card_sent,
    T.REWARD_REDEEMABLE: reward_redeemable,
    T.REWARD_REDEEMED: reward_redeemed,
    T.REWARD_REFUNDED: reward_refunded,
    T.WALLET_CLICK: wallet_click,
    T.WALLET_VISIT: wallet_visit,
}

# Types whose envelope repeats the campaign, or the page's url and browser.
CAMPAIGN_TYPES = frozenset({T.CUSTOMER_CREATED, T.COUPON_ASSIGNED, T.GIFT_CARD_SENT})
WEB_TYPES = frozenset({T.WALLET_CLICK, T.WALLET_VISIT})


def properties(kind: T, c: Customer, rng: random.Random, n: int, **given: Any) -> Props:
    return BUILDERS[kind](c, rng, n, **given)
