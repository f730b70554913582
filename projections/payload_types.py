"""The typed payload of each of the 18 known events: what the folds consume
and what StreamEvents replays (field names are the proto's, the property in
snake_case; numbers are canonical `int | Decimal`, see exact_numbers.py).
`payloads.py` reads them from stored bodies. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from .exact_numbers import Number

# Not frozen, like RecordedEvent: a replay builds millions and frozen
# dataclasses cost several times as much to build. Treat them as immutable.


@dataclass(slots=True)
class CustomerCreated:
    email: str | None
    origin: str | None
    referral: str | None
    utm_campaign: str | None
    utm_medium: str | None
    utm_source: str | None
    first_name: str | None
    last_name: str | None
    phone_number: str | None


@dataclass(slots=True)
class CustomerBirthday:
    age: int | None


@dataclass(slots=True)
class CustomerScanned:
    pass


@dataclass(slots=True)
class CustomerTapped:
    pass


@dataclass(slots=True)
class WalletPassRequested:
    email: str | None
    referral: str | None
    download_link: str | None
    utm_campaign: str | None
    utm_source: str | None
    utm_medium: str | None


@dataclass(slots=True)
class WalletPassInstalled:
    referral: str | None
    utm_campaign: str | None
    utm_source: str | None
    utm_medium: str | None


@dataclass(slots=True)
class WalletPassUninstalled:
    referral: str | None
    utm_campaign: str | None
    utm_source: str | None
    utm_medium: str | None


@dataclass(slots=True)
class BalanceChanged:
    amount: Number
    reference: str | None
    previous_balance: Number | None
    points_to_next_reward: Number | None
    next_reward_name: str | None


@dataclass(slots=True)
class TierChanged:
    previous: str | None
    current: str | None


@dataclass(slots=True)
class CouponAssigned:
    code: str
    header: str | None
    body: str | None
    slug: str | None
    assigned_from: str | None
    install_url: str | None


@dataclass(slots=True)
class CouponPassInstalled:
    code: str | None
    referral: str | None
    utm_campaign: str | None
    utm_source: str | None
    utm_medium: str | None


@dataclass(slots=True)
class CouponPassUninstalled:
    code: str | None
    referral: str | None
    utm_campaign: str | None
    utm_source: str | None
    utm_medium: str | None


@dataclass(slots=True)
class GiftCardSent:
    code: str
    header: str | None
    body: str | None
    slug: str | None
    assigned_from: str | None
    install_url: str | None
    mail_sent: bool | None


@dataclass(slots=True)
class RewardRedeemable:
    reward_id: str
    reward_link: str | None
    reward_title: str | None
    reward_value: Number | None
    reward_cost: Number | None
    customer_remaining_balance: Number | None


@dataclass(slots=True)
class RewardRedeemed:
    reward_id: str
    reward_link: str | None
    reward_title: str | None
    code: str | None
    claim_id: str | None


@dataclass(slots=True)
class RewardRefunded:
    claim_id: str


@dataclass(slots=True)
class WalletClick:
    url: str | None
    browser: str | None
    utm_campaign: str | None
    utm_source: str | None
    utm_medium: str | None


@dataclass(slots=True)
class WalletVisit:
    name: str | None
    url: str | None
    browser: str | None
    referral: str | None
    utm_campaign: str | None
    utm_source: str | None
    utm_medium: str | None


Payload = (
    CustomerCreated
    | CustomerBirthday
    | CustomerScanned
    | CustomerTapped
    | WalletPassRequested
    | WalletPassInstalled
    | WalletPassUninstalled
    | BalanceChanged
    | TierChanged
    | CouponAssigned
    | CouponPassInstalled
    | CouponPassUninstalled
    | GiftCardSent
    | RewardRedeemable
    | RewardRedeemed
    | RewardRefunded
    | WalletClick
    | WalletVisit
)
