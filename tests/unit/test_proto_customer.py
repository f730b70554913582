"""The Customer message and its parts, as other teams' generated clients
see them (see test_proto_contract.py for why these names are binding)."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import Descriptor

from testkit.protoshapes import (
    BOOL,
    INT64,
    STRING,
    TIMESTAMP,
    assert_shape,
    balance_change_pb2,
    customer_pb2,
    enum_of,
    fields_of,
    message_of,
    qualified,
)

# --- Customer ------------------------------------------------------------------


CUSTOMER_FIELDS: dict[str, object] = {
    "customer_id": STRING,
    "email": STRING,
    "first_name": STRING,
    "last_name": STRING,
    "phone_number": STRING,
    "origin": STRING,
    "referral": STRING,
    "utm": qualified("Utm"),
    "registered_at": TIMESTAMP,
    "points_balance": INT64,
    "points_balance_decimal": STRING,
    "points_to_next_reward": INT64,
    "points_to_next_reward_decimal": STRING,
    "next_reward_name": STRING,
    "tier": qualified("Tier"),
    "wallet_pass": qualified("WalletPass"),
    "coupons": [qualified("Coupon")],
    "coupon_passes_installed": INT64,
    "gift_cards": [qualified("GiftCard")],
    "redeemable_rewards": [qualified("RedeemableReward")],
    "redeemed_rewards": [qualified("RedeemedReward")],
    "engagement": qualified("Engagement"),
    "birthday": qualified("Birthday"),
    "event_count": INT64,
    "position": INT64,
}

CUSTOMER_PART_FIELDS: dict[str, dict[str, object]] = {
    "Utm": {"source": STRING, "medium": STRING, "campaign": STRING},
    "Tier": {"current": STRING, "previous": STRING, "changed_at": TIMESTAMP},
    "WalletPass": {
        "status": qualified("WalletPassStatus"),
        "download_link": STRING,
        "requested_at": TIMESTAMP,
        "installed_at": TIMESTAMP,
        "uninstalled_at": TIMESTAMP,
    },
    "Coupon": {
        "code": STRING,
        "header": STRING,
        "body": STRING,
        "slug": STRING,
        "assigned_from": STRING,
        "install_url": STRING,
        "assigned_at": TIMESTAMP,
        "pass_installed": BOOL,
    },
    "GiftCard": {
        "code": STRING,
        "header": STRING,
        "body": STRING,
        "slug": STRING,
        "assigned_from": STRING,
        "install_url": STRING,
        "mail_sent": BOOL,
        "sent_at": TIMESTAMP,
    },
    "RedeemableReward": {
        "reward_id": STRING,
        "reward_link": STRING,
        "reward_title": STRING,
        "reward_value": INT64,
        "reward_value_decimal": STRING,
        "reward_cost": INT64,
        "reward_cost_decimal": STRING,
        "customer_remaining_balance": INT64,
        "customer_remaining_balance_decimal": STRING,
        "offered_at": TIMESTAMP,
    },
    "RedeemedReward": {
        "claim_id": STRING,
        "reward_id": STRING,
        "reward_link": STRING,
        "reward_title": STRING,
        "code": STRING,
        "redeemed_at": TIMESTAMP,
        "refunded": BOOL,
        "refunded_at": TIMESTAMP,
    },
    "Engagement": {
        "scans": INT64,
        "taps": INT64,
        "wallet_clicks": INT64,
        "wallet_visits": INT64,
        "last_activity_at": TIMESTAMP,
    },
    "Birthday": {"age": INT64, "last_celebrated_at": TIMESTAMP},
}


def test_customer_fields_are_all_at_top_level() -> None:
    assert_shape(message_of(customer_pb2, "Customer"), CUSTOMER_FIELDS)


def test_customer_has_no_resource_name() -> None:
    assert "name" not in fields_of(message_of(customer_pb2, "Customer"))


@pytest.mark.parametrize("part", sorted(CUSTOMER_PART_FIELDS))
def test_customer_part_fields(part: str) -> None:
    assert_shape(message_of(customer_pb2, part), CUSTOMER_PART_FIELDS[part])


BALANCE_CHANGE_FIELDS: dict[str, object] = {
    "event_id": STRING,
    "position": INT64,
    "created_at": TIMESTAMP,
    "amount": INT64,
    "amount_decimal": STRING,
    "reference": STRING,
    "previous_balance": INT64,
    "previous_balance_decimal": STRING,
    "points_to_next_reward": INT64,
    "points_to_next_reward_decimal": STRING,
    "next_reward_name": STRING,
}


def test_balance_change_fields() -> None:
    assert_shape(message_of(balance_change_pb2, "BalanceChange"), BALANCE_CHANGE_FIELDS)


@pytest.mark.parametrize(
    ("message", "field", "optional"),
    [
        (message_of(customer_pb2, "Customer"), "points_balance", False),
        (message_of(customer_pb2, "Customer"), "points_to_next_reward", True),
        (message_of(customer_pb2, "Birthday"), "age", True),
        (message_of(customer_pb2, "RedeemableReward"), "reward_value", True),
        (message_of(customer_pb2, "RedeemableReward"), "reward_cost", True),
        (
            message_of(customer_pb2, "RedeemableReward"),
            "customer_remaining_balance",
            True,
        ),
        (message_of(balance_change_pb2, "BalanceChange"), "amount", False),
        (message_of(balance_change_pb2, "BalanceChange"), "previous_balance", True),
        (
            message_of(balance_change_pb2, "BalanceChange"),
            "points_to_next_reward",
            True,
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_point_scalar_presence(message: Descriptor, field: str, optional: bool) -> None:
    assert fields_of(message)[field].has_presence is optional


@pytest.mark.parametrize(
    "message",
    [
        message_of(customer_pb2, "Customer"),
        message_of(customer_pb2, "RedeemableReward"),
        message_of(balance_change_pb2, "BalanceChange"),
    ],
    ids=lambda m: m.name,
)
def test_every_decimal_text_sits_beside_an_int64(message: Descriptor) -> None:
    fields = fields_of(message)
    decimals = [name for name in fields if name.endswith("_decimal")]
    assert decimals, f"{message.name} has no _decimal field"
    for name in decimals:
        whole = fields.get(name.removesuffix("_decimal"))
        assert whole is not None and whole.type == INT64, name
        assert fields[name].type == STRING, name


def test_wallet_pass_status_values() -> None:
    enum = enum_of(customer_pb2, "WalletPassStatus")
    assert {v.name: v.number for v in enum.values} == {
        "WALLET_PASS_STATUS_UNSPECIFIED": 0,
        "WALLET_PASS_STATUS_NONE": 1,
        "WALLET_PASS_STATUS_REQUESTED": 2,
        "WALLET_PASS_STATUS_INSTALLED": 3,
        "WALLET_PASS_STATUS_UNINSTALLED": 4,
    }
