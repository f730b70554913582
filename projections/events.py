"""The stored event as every consumer sees it, and the 18 known event types.

This module is the one vocabulary shared by the ingress (which stores events),
the folds (which read them) and the API (which replays them). It is pure.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class EventType(enum.Enum):
    """The 18 JeriCommerce events; values are the names as documented."""

    CUSTOMER_CREATED = "Customer created"
    CUSTOMER_BIRTHDAY = "Customer birthday"
    CUSTOMER_SCANNED = "Customer scanned"
    CUSTOMER_TAPPED = "Customer tapped"
    WALLET_PASS_REQUESTED = "Wallet pass requested"
    WALLET_PASS_INSTALLED = "Wallet pass installed"
    WALLET_PASS_UNINSTALLED = "Wallet pass uninstalled"
    BALANCE_CHANGED = "Balance changed"
    TIER_CHANGED = "Tier changed"
    COUPON_ASSIGNED = "Coupon assigned"
    COUPON_PASS_INSTALLED = "Coupon pass installed"
    COUPON_PASS_UNINSTALLED = "Coupon pass uninstalled"
    GIFT_CARD_SENT = "Gift card sent"
    REWARD_REDEEMABLE = "Reward redeemable"
    REWARD_REDEEMED = "Reward redeemed"
    REWARD_REFUNDED = "Reward refunded"
    WALLET_CLICK = "Wallet click"
    WALLET_VISIT = "Wallet visit"

    # Members are singletons compared by identity; Enum's own __hash__ is
    # Python code, and replays and folds look types up millions of times.
    __hash__ = object.__hash__


_SEPARATORS = re.compile(r"[^0-9a-z]+")


def name_key(name: str) -> str:
    """Case- and separator-insensitive key: 'Balance changed', 'balance_changed',
    'balance.changed', 'BALANCE_CHANGED' and 'balanceChanged' all give
    'balancechanged'."""
    return _SEPARATORS.sub("", name.lower())


_BY_KEY: dict[str, EventType] = {name_key(t.value): t for t in EventType}


def parse_event_type(name: str) -> EventType | None:
    """The known type a sender's event name denotes, or None if unknown."""
    return _BY_KEY.get(name_key(name))


# RecordedEvent.kind: a webhook's event (""), one whose personal content was
# erased (its customer's key is gone), or the record of an erasure itself.
REDACTED_EVENT = "redacted"
ERASURE = "erasure"


@dataclass(slots=True)
class RecordedEvent:
    """One webhook as stored: what the folds, the replay API and the CLI read.

    Treat it as immutable. It is not `frozen` only because a frozen
    dataclass costs five times as much to build, and a replay builds
    millions.

    `body` is the parsed JSON payload (numbers with a fraction are `Decimal`,
    so arithmetic stays exact); `raw` is the request body, byte for byte.
    `type` is None for an event name we do not know (stored, replayed, folded
    into nothing). `kind` is "" for a webhook's event, REDACTED_EVENT when its
    customer was erased (`body` and `raw` are then empty, and the folds skip
    it), ERASURE for the record of an erasure of `customer_id` (the folds
    drop everything they hold of that customer).
    """

    position: int
    id: str
    type: EventType | None
    type_name: str
    customer_id: str
    created_at: datetime
    received_at: datetime
    body: dict[str, Any] = field(repr=False)
    raw: bytes = field(repr=False)
    kind: str = ""
    # The W3C trace context the event was stored under ("" when none).
    traceparent: str = ""

    @property
    def redacted(self) -> bool:
        return self.kind == REDACTED_EVENT

    @property
    def is_erasure(self) -> bool:
        return self.kind == ERASURE

    @property
    def properties(self) -> dict[str, Any]:
        props = self.body.get("properties")
        return props if isinstance(props, dict) else {}

    @property
    def sort_key(self) -> tuple[datetime, str]:
        """'Newest' in the read-model rules: greatest createdAt, ties broken by id."""
        return (self.created_at, self.id)
