"""Gift cards: one per code, the newest `Gift card sent` for it wins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..events import RecordedEvent
from .fields import flag, key_text, text
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


_DETAILS = ("header", "body", "slug", "assignedFrom", "installUrl")


def on_sent(state: CustomerState, event: RecordedEvent, us: int) -> None:
    props = event.properties
    code = key_text(props, "code")
    header, body, slug, assigned_from, install_url = (
        text(props, name) for name in _DETAILS
    )
    mail_sent = flag(props, "mailSent")
    if newer(us, event.id, state.gift_cards.get(code)):
        state.gift_cards[code] = GiftCardSet(
            us, event.id, header, body, slug, assigned_from, install_url, mail_sent
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
