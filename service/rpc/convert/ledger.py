"""Points-ledger entries -> protobuf messages."""

from __future__ import annotations

from jericommerce.loyalty.v1 import balance_change_pb2

from projections.customer.points import LedgerEntry

from .scalars import number, timestamp


def ledger_entry_to_proto(e: LedgerEntry) -> balance_change_pb2.BalanceChange:
    """One points-ledger entry."""
    return balance_change_pb2.BalanceChange(
        event_id=e.event_id,
        position=e.position,
        created_at=timestamp(e.created_at),
        **number("amount", e.amount),
        reference=e.reference,
        **number("previous_balance", e.previous_balance),
        **number("points_to_next_reward", e.points_to_next_reward),
        next_reward_name=e.next_reward_name,
    )
