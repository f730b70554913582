"""Read models as plain JSON values, for the CLI and operators."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from decimal import Decimal
from typing import Any


def plain(value: Any) -> Any:
    """Dataclasses, datetimes, Decimals and enums as JSON-ready values.
    Decimals become strings so no precision is lost on the way out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def public(customer: Any) -> dict[str, Any]:
    """A Customer view as plain values, without the fields kept for the
    store's own use (marked `internal`): what the API serves."""
    hidden = {
        f.name for f in dataclasses.fields(customer) if f.metadata.get("internal")
    }
    return {k: v for k, v in plain(customer).items() if k not in hidden}


def human(customer: Any) -> str:
    """A compact, readable summary of a Customer view."""
    c = plain(customer)
    name = " ".join(x for x in (c["first_name"], c["last_name"]) if x)
    lines = [
        f"customer      {c['customer_id']}",
        f"email         {c['email'] or '-'}",
        f"name          {name or '-'}",
        f"points        {c['points_balance']}"
        + (
            f"  ({c['points_to_next_reward']} to {c['next_reward_name']})"
            if c["points_to_next_reward"] is not None
            else ""
        ),
        f"tier          {c['tier']['current'] or '-'}",
        f"wallet pass   {c['wallet_pass']['status']}",
        f"coupons       {len(c['coupons'])} ({c['coupon_passes_installed']} passes "
        "installed)",
        f"gift cards    {len(c['gift_cards'])}",
        f"rewards       {len(c['redeemable_rewards'])} offered, "
        f"{len(c['redeemed_rewards'])} redeemed "
        f"({sum(r['refunded'] for r in c['redeemed_rewards'])} refunded)",
        "engagement    {scans} scans, {taps} taps, {wallet_clicks} clicks, "
        "{wallet_visits} visits".format(**c["engagement"]),
        f"last activity {c['engagement']['last_activity_at'] or '-'}",
        f"events        {c['event_count']} (position {c['position']})",
    ]
    return "\n".join(lines)
