"""What the simulated sender knows about one customer.

The properties of an event depend on the customer's past (a refund names a
claim of an earlier redemption, a coupon's pass names an assigned coupon), so
the sender keeps this state as it writes each customer's events.
"""

from __future__ import annotations

import random
import unicodedata
import uuid
from dataclasses import dataclass, field

from testkit.traffic.catalogue import (
    FIRST_NAMES,
    LAST_NAMES,
    UTM_CAMPAIGNS,
    UTM_MEDIUMS,
    UTM_SOURCES,
)


@dataclass
class Customer:
    id: str
    email: str
    first_name: str
    last_name: str
    utm: dict[str, str]  # the campaign that brought them, repeated on their events
    campaign_id: str
    balance: int = 0
    tier: str | None = None
    wallet: str = "NONE"  # the pass status their newest wallet-pass event implies
    coupons: list[str] = field(default_factory=list)
    rewards: list[str] = field(default_factory=list)
    claims: list[str] = field(default_factory=list)
    created: bool = False  # their `Customer created` was sent
    clock: int = 0  # seconds of their history so far
    activity: float = 1.0  # relative share of the traffic

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


def uuid4(rng: random.Random) -> str:
    """A random UUID drawn from `rng`, so a seed gives the same ids."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def ascii_name(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return plain.lower()


def new_customer(
    rng: random.Random,
    customer_id: str | None = None,
    *,
    email_tag: str = "",
    activity: float = 1.0,
) -> Customer:
    """A customer with a name, an email made from it (unique with
    `email_tag`), and the campaign that brought them."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    cid = customer_id or uuid4(rng)
    tag = email_tag or cid[-8:]
    return Customer(
        id=cid,
        email=f"{ascii_name(first)}.{ascii_name(last)}+{tag}@example.com",
        first_name=first,
        last_name=last,
        utm={
            "utmSource": rng.choice(UTM_SOURCES),
            "utmMedium": rng.choice(UTM_MEDIUMS),
            "utmCampaign": rng.choice(UTM_CAMPAIGNS),
        },
        campaign_id=uuid4(rng),
        activity=activity,
    )
