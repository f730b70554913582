"""A customer's fold state -> the API's Customer, without the view.

The one mapping of a customer to its message: the stored answers and
ExportCustomer send what it builds (tests hold it byte-equal to the view
mapped field by field, `testkit.customer_message`). It skips the view
because the projections make one per changed customer, and the view's
datetimes, dataclasses and Decimals cost more than the message itself. So
the values go from the state's registers straight into nested constructor
arguments, a time as a seconds/nanos dict (no Timestamp object, no
datetime), an absent part left out. The rules that are more than copying
(the balance, the pass status) are the view's own functions.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any

from jericommerce.loyalty.v1 import customer_pb2

from projections.customer.coupons import passes_installed
from projections.customer.points import points_view
from projections.customer.state import CustomerState
from projections.customer.wallet_pass import WalletPassStatus, pass_status
from projections.exact_numbers import Number, Stored

from .scalars import INT64_MAX, INT64_MIN, decimal_text

_Customer = customer_pb2.Customer
WALLET_PASS_STATUS: dict[WalletPassStatus, customer_pb2.WalletPassStatus.ValueType] = {
    s: customer_pb2.WalletPassStatus.Value(f"WALLET_PASS_STATUS_{s.name}")
    for s in WalletPassStatus
}
_Args = dict[str, Any]


def _time(us: int) -> dict[str, int]:
    # Floor division, as `at` then `seconds_nanos` would give (nanos >= 0).
    seconds, micros = divmod(us, 1_000_000)
    return {"seconds": seconds, "nanos": micros * 1000}


@lru_cache(maxsize=1024)
def _decimal_parts(stored: str) -> tuple[int, str]:
    # Decimals in the state are few distinct texts (prices, rewards' values)
    # whose parsing and printing would dominate the small ones' cost.
    exact = Decimal(stored)
    return min(max(int(exact), INT64_MIN), INT64_MAX), decimal_text(exact)


def _number(args: _Args, name: str, value: Number | Stored | None) -> None:
    """`scalars.number` for a stored or loaded number, into `args`."""
    if value is None:
        return
    if type(value) is int:
        args[name] = (
            value
            if INT64_MIN <= value <= INT64_MAX
            else (INT64_MAX if value > 0 else INT64_MIN)
        )
        args[name + "_decimal"] = str(value)
        return
    whole, text = _decimal_parts(value if isinstance(value, str) else str(value))
    args[name] = whole
    args[name + "_decimal"] = text


def _coupons(state: CustomerState) -> list[_Args]:
    passes = state.coupon_passes
    out = []
    for code, k in sorted(state.coupons.items()):
        installed = passes.get(code)
        out.append(
            {
                "code": code,
                "header": k.header,
                "body": k.body,
                "slug": k.slug,
                "assigned_from": k.assigned_from,
                "install_url": k.install_url,
                "assigned_at": _time(k.us),
                "pass_installed": installed is not None and installed.installed,
            }
        )
    return out


def _gift_cards(state: CustomerState) -> list[_Args]:
    return [
        {
            "code": code,
            "header": g.header,
            "body": g.body,
            "slug": g.slug,
            "assigned_from": g.assigned_from,
            "install_url": g.install_url,
            "mail_sent": g.mail_sent,
            "sent_at": _time(g.us),
        }
        for code, g in sorted(state.gift_cards.items())
    ]


def _offers(state: CustomerState) -> list[_Args]:
    out = []
    for reward_id, o in sorted(state.offers.items()):
        args: _Args = {
            "reward_id": reward_id,
            "reward_link": o.link,
            "reward_title": o.title,
            "offered_at": _time(o.us),
        }
        _number(args, "reward_value", o.value)
        _number(args, "reward_cost", o.cost)
        _number(args, "customer_remaining_balance", o.remaining)
        out.append(args)
    return out


def _claims(state: CustomerState) -> list[_Args]:
    refunds = state.refunds
    out = []
    for claim_id, k in sorted(state.claims.items()):
        args: _Args = {
            "claim_id": claim_id,
            "reward_id": k.reward_id,
            "reward_link": k.link,
            "reward_title": k.title,
            "code": k.code,
            "redeemed_at": _time(k.us),
        }
        refund = refunds.get(claim_id)
        if refund is not None:
            args["refunded"] = True
            args["refunded_at"] = _time(refund.us)
        out.append(args)
    return out


def customer_from_state(state: CustomerState) -> customer_pb2.Customer:
    """The API's Customer for a fold state."""
    s = state
    wallet: _Args = {"status": WALLET_PASS_STATUS[pass_status(s)]}
    if (requested := s.pass_requested) is not None:
        wallet["download_link"] = requested.download_link
        wallet["requested_at"] = _time(requested.us)
    if (installed := s.pass_installed) is not None:
        wallet["installed_at"] = _time(installed.us)
    if (uninstalled := s.pass_uninstalled) is not None:
        wallet["uninstalled_at"] = _time(uninstalled.us)
    engagement: _Args = {
        "scans": s.scans,
        "taps": s.taps,
        "wallet_clicks": s.wallet_clicks,
        "wallet_visits": s.wallet_visits,
    }
    if s.last_activity is not None:
        engagement["last_activity_at"] = _time(s.last_activity)
    balance = points_view(s)
    args: _Args = {
        "customer_id": s.customer_id,
        "next_reward_name": balance.next_reward_name,
        "wallet_pass": wallet,
        "coupon_passes_installed": passes_installed(s),
        "engagement": engagement,
        "event_count": s.event_count,
        "position": s.position,
    }
    _number(args, "points_balance", balance.points_balance)
    _number(args, "points_to_next_reward", balance.points_to_next_reward)
    if (seen := s.email) is not None:
        args["email"] = seen.email
    if (created := s.created) is not None:
        args["first_name"] = created.first_name
        args["last_name"] = created.last_name
        args["phone_number"] = created.phone_number
        args["origin"] = created.origin
        args["referral"] = created.referral
        args["utm"] = {
            "source": created.utm_source,
            "medium": created.utm_medium,
            "campaign": created.utm_campaign,
        }
        args["registered_at"] = _time(created.us)
    if (tier := s.tier) is not None:
        args["tier"] = {
            "current": tier.current,
            "previous": tier.previous,
            "changed_at": _time(tier.us),
        }
    if (birthday := s.birthday) is not None:
        args["birthday"] = {
            "age": birthday.age,
            "last_celebrated_at": _time(birthday.us),
        }
    if s.coupons:
        args["coupons"] = _coupons(s)
    if s.gift_cards:
        args["gift_cards"] = _gift_cards(s)
    if s.offers:
        args["redeemable_rewards"] = _offers(s)
    if s.claims:
        args["redeemed_rewards"] = _claims(s)
    return _Customer(**args)
