"""Gift cards: one per code, the newest `Gift card sent` for it wins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..events import RecordedEvent
from ..payload_types import GiftCardSent
from .state import CustomerState, GiftCardSet
from .timekeys import at, newer


@dataclass(frozen=True, slots=True)
class GiftCard:
    code: str
    header: str | None
    body: str | None
    slug: str | None
    assigned_from: str | None
    install_url: str | None
    mail_sent: bool  # False when the sender did not say
    sent_at: datetime


def on_sent(
    state: CustomerState, event: RecordedEvent, p: GiftCardSent, us: int
) -> None:
    code = p.code
    if newer(us, event.id, state.gift_cards.get(code)):
        state.gift_cards[code] = GiftCardSet(
            us,
            event.id,
            p.header,
            p.body,
            p.slug,
            p.assigned_from,
            p.install_url,
            bool(p.mail_sent),  # unsaid is False
        )


def gift_cards_view(state: CustomerState) -> tuple[GiftCard, ...]:
    cards = []
    for code, card in sorted(state.gift_cards.items()):
        cards.append(
            GiftCard(
                code,
                card.header,
                card.body,
                card.slug,
                card.assigned_from,
                card.install_url,
                card.mail_sent,
                at(card.us),
            )
        )
    return tuple(cards)
