"""Older payload shapes mapped onto the current one, when an event is read.

The stored body stays verbatim forever; the typed payload is made from it at
each read, so a change in what JeriCommerce sends is absorbed here, once, and
old events replay in the current contract. Two kinds of change are covered:

- a property renamed: `upcast` moves the old spelling to the current one
  (when the body does not also carry the current one, which then wins and
  leaves the old one among the unread properties). Today's table maps the
  snake_case spelling of every property we read to JeriCommerce's camelCase
  (`previous_balance` -> `previousBalance`), as event names already are
  matched whatever their separators;
- a number sent as a string (`"previousBalance": "150"`): the reading itself
  (exact_numbers.exact) takes a numeric string as the number it spells.

Add an entry to RENAMED when JeriCommerce renames a property; never change
the meaning of an existing field.
"""

from __future__ import annotations

import re
from typing import Any

from .events import EventType

# Per type: the properties read, in JeriCommerce's current spelling. Kept
# here (not derived from payloads.SPECS) so this module has no dependents.
CURRENT: dict[EventType, tuple[str, ...]] = {
    EventType.CUSTOMER_CREATED: (
        "origin",
        "referral",
        "utmCampaign",
        "utmMedium",
        "utmSource",
        "firstName",
        "lastName",
        "phoneNumber",
    ),
    EventType.CUSTOMER_BIRTHDAY: ("age",),
    EventType.CUSTOMER_SCANNED: (),
    EventType.CUSTOMER_TAPPED: (),
    EventType.WALLET_PASS_REQUESTED: (
        "referral",
        "downloadLink",
        "utmCampaign",
        "utmSource",
        "utmMedium",
    ),
    EventType.WALLET_PASS_INSTALLED: (
        "referral",
        "utmCampaign",
        "utmSource",
        "utmMedium",
    ),
    EventType.WALLET_PASS_UNINSTALLED: (
        "referral",
        "utmCampaign",
        "utmSource",
        "utmMedium",
    ),
    EventType.BALANCE_CHANGED: (
        "amount",
        "reference",
        "previousBalance",
        "pointsToNextReward",
        "nextRewardName",
    ),
    EventType.TIER_CHANGED: ("previous", "current"),
    EventType.COUPON_ASSIGNED: (
        "code",
        "header",
        "body",
        "slug",
        "assignedFrom",
        "installUrl",
    ),
    EventType.COUPON_PASS_INSTALLED: (
        "code",
        "referral",
        "utmCampaign",
        "utmSource",
        "utmMedium",
    ),
    EventType.COUPON_PASS_UNINSTALLED: (
        "code",
        "referral",
        "utmCampaign",
        "utmSource",
        "utmMedium",
    ),
    EventType.GIFT_CARD_SENT: (
        "code",
        "header",
        "body",
        "slug",
        "assignedFrom",
        "installUrl",
        "mailSent",
    ),
    EventType.REWARD_REDEEMABLE: (
        "rewardId",
        "rewardLink",
        "rewardTitle",
        "rewardValue",
        "rewardCost",
        "customerRemainingBalance",
    ),
    EventType.REWARD_REDEEMED: (
        "rewardId",
        "rewardLink",
        "rewardTitle",
        "code",
        "claimId",
    ),
    EventType.REWARD_REFUNDED: ("claimId",),
    EventType.WALLET_CLICK: ("url", "browser", "utmCampaign", "utmSource", "utmMedium"),
    EventType.WALLET_VISIT: (
        "name",
        "url",
        "browser",
        "referral",
        "utmCampaign",
        "utmSource",
        "utmMedium",
    ),
}

_UPPER = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake_case(name: str) -> str:
    """`previousBalance` -> `previous_balance`."""
    return _UPPER.sub(r"_\1", name).lower()


# Per type: old spelling -> current spelling. Only names that differ.
RENAMED: dict[EventType, dict[str, str]] = {
    kind: {snake_case(n): n for n in names if snake_case(n) != n}
    for kind, names in CURRENT.items()
}


def upcast(kind: EventType, props: dict[str, Any]) -> dict[str, Any]:
    """`props` in the current shape; the same dict when nothing is renamed."""
    return upcast_with(RENAMED[kind], props)


def upcast_with(renamed: dict[str, str], props: dict[str, Any]) -> dict[str, Any]:
    """`upcast` with the type's RENAMED entry already looked up (the common
    case costs one set test)."""
    if not renamed or renamed.keys().isdisjoint(props):
        return props
    current = dict(props)
    for old, new in renamed.items():
        if old in current and new not in current:
            current[new] = current.pop(old)
    return current
