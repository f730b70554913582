"""A customer's read model, folded from their events (pure, no I/O)."""

from .birthday import Birthday
from .codec import decode_state, encode_state
from .coupons import Coupon
from .engagement import Engagement
from .gift_cards import GiftCard
from .model import (
    Customer,
    CustomerState,
    FoldResult,
    PoisonEvent,
    apply,
    fold,
    new_state,
    view,
)
from .points import LedgerEntry
from .profile import Utm
from .rewards import RedeemableReward, RedeemedReward
from .tier import Tier
from .wallet_pass import WalletPass, WalletPassStatus

__all__ = [
    "Birthday",
    "Coupon",
    "Customer",
    "CustomerState",
    "Engagement",
    "FoldResult",
    "GiftCard",
    "LedgerEntry",
    "PoisonEvent",
    "RedeemableReward",
    "RedeemedReward",
    "Tier",
    "Utm",
    "WalletPass",
    "WalletPassStatus",
    "apply",
    "decode_state",
    "encode_state",
    "fold",
    "new_state",
    "view",
]
