"""Reading each known event's typed payload (payload_types.py) from its
stored body: the one reading of a body.

The folds (projections/customer) and the replay API (service/rpc/convert)
both consume what `read_payload` (or a `Reading`) makes, so a consumer
replaying our events sees exactly the values our read models were built
from. Pure: no protobuf, no I/O.

Each payload is read from the body's `properties`, after `upcasting` has
mapped older shapes onto the current one. A property no read model uses is
read leniently (fields.loose_text), so carrying it can never make an event
a dead letter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from .events import EventType, RecordedEvent
from .fields import (
    PoisonEvent,
    Props,
    flag,
    integer,
    key_number,
    key_text,
    loose_text,
    number,
    text,
)
from .payload_types import (
    BalanceChanged,
    CouponAssigned,
    CouponPassInstalled,
    CouponPassUninstalled,
    CustomerBirthday,
    CustomerCreated,
    CustomerScanned,
    CustomerTapped,
    GiftCardSent,
    Payload,
    RewardRedeemable,
    RewardRedeemed,
    RewardRefunded,
    TierChanged,
    WalletClick,
    WalletPassInstalled,
    WalletPassRequested,
    WalletPassUninstalled,
    WalletVisit,
)
from .upcasting import RENAMED, upcast_with

# -- how each field is read ----------------------------------------------------

Body = dict[str, Any]


class Field(NamedTuple):
    """How one payload field is read (one per dataclass field, in order)."""

    prop: str  # the sender's property (camelCase); "" for a base-payload field
    read: Callable[
        ..., Any
    ]  # read(props, key), read(body, key) or read(props, body, key)
    source: str  # "props", "base" or "web": which of those three calls
    key: str  # the name `read` is given
    loose: bool  # carried only: a value of another kind is left out, never poison


Spec = tuple[Field, ...]


def _prop(read: Callable[[Props, str], Any], name: str) -> Field:
    return Field(name, read, "props", name, read is loose_text)


def _base_text(body: Body, key: str) -> str | None:
    value = body.get(key)
    return value if type(value) is str else None


def _base_email() -> Field:
    # The customer's email is the base payload's, as the profile reads it.
    return Field("", _base_text, "base", "email", False)


def _web_text(props: Props, body: Body, name: str) -> str | None:
    # Web events carry url/browser in properties or in the base payload.
    value = loose_text(props, name)
    return value if value is not None else _base_text(body, name)


def _web(name: str) -> Field:
    return Field(name, _web_text, "web", name, True)


_UTM = (
    _prop(loose_text, "utmCampaign"),
    _prop(loose_text, "utmSource"),
    _prop(loose_text, "utmMedium"),
)
_PASS: Spec = (_prop(loose_text, "referral"), *_UTM)
_COUPON_PASS: Spec = (_prop(text, "code"), *_PASS)
_DETAILS: Spec = (
    _prop(text, "header"),
    _prop(text, "body"),
    _prop(text, "slug"),
    _prop(text, "assignedFrom"),
    _prop(text, "installUrl"),
)

SPECS: dict[EventType, tuple[type[Payload], Spec]] = {
    EventType.CUSTOMER_CREATED: (
        CustomerCreated,
        (
            _base_email(),
            _prop(text, "origin"),
            _prop(text, "referral"),
            _prop(text, "utmCampaign"),
            _prop(text, "utmMedium"),
            _prop(text, "utmSource"),
            _prop(text, "firstName"),
            _prop(text, "lastName"),
            _prop(text, "phoneNumber"),
        ),
    ),
    EventType.CUSTOMER_BIRTHDAY: (CustomerBirthday, (_prop(integer, "age"),)),
    EventType.CUSTOMER_SCANNED: (CustomerScanned, ()),
    EventType.CUSTOMER_TAPPED: (CustomerTapped, ()),
    EventType.WALLET_PASS_REQUESTED: (
        WalletPassRequested,
        (
            _base_email(),
            _prop(loose_text, "referral"),
            _prop(text, "downloadLink"),
            *_UTM,
        ),
    ),
    EventType.WALLET_PASS_INSTALLED: (WalletPassInstalled, _PASS),
    EventType.WALLET_PASS_UNINSTALLED: (WalletPassUninstalled, _PASS),
    EventType.BALANCE_CHANGED: (
        BalanceChanged,
        (
            _prop(key_number, "amount"),
            _prop(text, "reference"),
            _prop(number, "previousBalance"),
            _prop(number, "pointsToNextReward"),
            _prop(text, "nextRewardName"),
        ),
    ),
    EventType.TIER_CHANGED: (
        TierChanged,
        (_prop(text, "previous"), _prop(text, "current")),
    ),
    EventType.COUPON_ASSIGNED: (CouponAssigned, (_prop(key_text, "code"), *_DETAILS)),
    EventType.COUPON_PASS_INSTALLED: (CouponPassInstalled, _COUPON_PASS),
    EventType.COUPON_PASS_UNINSTALLED: (CouponPassUninstalled, _COUPON_PASS),
    EventType.GIFT_CARD_SENT: (
        GiftCardSent,
        (_prop(key_text, "code"), *_DETAILS, _prop(flag, "mailSent")),
    ),
    EventType.REWARD_REDEEMABLE: (
        RewardRedeemable,
        (
            _prop(key_text, "rewardId"),
            _prop(text, "rewardLink"),
            _prop(text, "rewardTitle"),
            _prop(number, "rewardValue"),
            _prop(number, "rewardCost"),
            _prop(number, "customerRemainingBalance"),
        ),
    ),
    EventType.REWARD_REDEEMED: (
        RewardRedeemed,
        (
            _prop(key_text, "rewardId"),
            _prop(text, "rewardLink"),
            _prop(text, "rewardTitle"),
            _prop(text, "code"),
            _prop(text, "claimId"),
        ),
    ),
    EventType.REWARD_REFUNDED: (RewardRefunded, (_prop(key_text, "claimId"),)),
    EventType.WALLET_CLICK: (
        WalletClick,
        (_web("url"), _web("browser"), *_UTM),
    ),
    EventType.WALLET_VISIT: (
        WalletVisit,
        (
            _prop(loose_text, "name"),
            _web("url"),
            _web("browser"),
            _prop(loose_text, "referral"),
            *_UTM,
        ),
    ),
}
assert len(SPECS) == len(EventType)

# The kinds of value loose_text takes as text.
_TEXTUAL = frozenset({str, int, Decimal})


_ARGUMENTS = {"props": "props", "base": "body", "web": "props, body"}


def _compile(cls: type[Payload], spec: Spec) -> Callable[[Props, Body], Payload]:
    """`cls(<each field read>)` as one function, the way dataclasses writes
    its __init__: a loop over the readers costs a third more, and a replay
    or a rebuild reads millions of events."""
    env: dict[str, Any] = {"cls": cls}
    values = []
    for i, field in enumerate(spec):
        env[f"read{i}"] = field.read
        values.append(f"read{i}({_ARGUMENTS[field.source]}, {field.key!r})")
    source = f"def make(props, body):\n    return cls({', '.join(values)})\n"
    exec(compile(source, f"<reading of {cls.__name__}>", "exec"), env)
    make: Callable[[Props, Body], Payload] = env["make"]
    return make


@dataclass(frozen=True, slots=True)
class Reading:
    """How one type's payload is read: everything a read needs, found with
    one lookup."""

    cls: type[Payload]
    spec: Spec
    renamed: dict[str, str]  # upcasting.RENAMED of the type
    read: frozenset[str]  # the properties read
    loose: frozenset[str]  # the carried-only ones
    # make(props, body): the payload from upcast properties and the body;
    # raises PoisonEvent when a property the read models use is unusable.
    make: Callable[[Props, Body], Payload]

    def properties(self, event: RecordedEvent) -> Props:
        """The event's properties in the current shape (upcast)."""
        return upcast_with(self.renamed, event.properties)

    def unread(self, props: Props) -> Props:
        """The properties the payload does not carry: those not read, and
        carried-only ones of another kind than their field."""
        names = self.read
        if names.issuperset(props):  # the common case: nothing unknown
            unread = {}
        else:
            unread = {k: v for k, v in props.items() if k not in names}
        loose = self.loose
        if loose and not loose.isdisjoint(props):
            for name in loose.intersection(props):
                value = props[name]
                if value is not None and type(value) not in _TEXTUAL:
                    unread[name] = value  # what loose_text leaves unset
        return unread


READINGS: dict[EventType, Reading] = {
    kind: Reading(
        cls,
        spec,
        RENAMED[kind],
        frozenset(field.prop for field in spec if field.prop),
        frozenset(field.prop for field in spec if field.loose),
        _compile(cls, spec),
    )
    for kind, (cls, spec) in SPECS.items()
}


def read_payload(event: RecordedEvent) -> Payload:
    """The typed payload of an event of a known type.

    Raises PoisonEvent (a short reason) when a property the read models use
    is unusable, ValueError for an unknown type. Say nothing of redaction:
    callers skip redacted events (their body is empty).
    """
    kind = event.type
    if kind is None:
        raise ValueError(f"event {event.id} is of no known type")
    reading = READINGS[kind]
    return reading.make(reading.properties(event), event.body)


__all__ = ["READINGS", "Payload", "PoisonEvent", "Reading", "read_payload"]
