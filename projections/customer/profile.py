"""Profile: the email any event carries, the rest from `Customer created`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..events import RecordedEvent
from .fields import text
from .state import CustomerState
from .timekeys import at, newer


@dataclass(frozen=True, slots=True)
class Utm:
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    email: str | None
    email_seen_at: tuple[datetime, str] | None
    first_name: str | None
    last_name: str | None
    phone_number: str | None
    origin: str | None
    referral: str | None
    utm: Utm
    registered_at: datetime | None


_CREATED_FIELDS = (
    "firstName",
    "lastName",
    "phoneNumber",
    "origin",
    "referral",
    "utmSource",
    "utmMedium",
    "utmCampaign",
)


def on_customer_created(state: CustomerState, event: RecordedEvent, us: int) -> None:
    props = event.properties
    values = [text(props, name) for name in _CREATED_FIELDS]  # may raise: first
    if newer(us, event.id, state.created):
        state.created = [us, event.id, *values]


def note_email(state: CustomerState, event: RecordedEvent, us: int) -> None:
    """Any applied event may carry the email (base payload, not properties).

    Tolerant: a blank or non-string email is as good as none; it cannot poison.
    """
    email = event.body.get("email")
    if type(email) is str and newer(us, event.id, state.email):
        email = email.strip()
        if email:
            state.email = [us, event.id, email]


def profile_view(state: CustomerState) -> Profile:
    seen = state.email
    created = state.created or [None, None, *([None] * len(_CREATED_FIELDS))]
    first, last, phone, origin, referral, source, medium, campaign = created[2:]
    return Profile(
        email=seen[2] if seen else None,
        email_seen_at=(at(seen[0]), seen[1]) if seen else None,
        first_name=first,
        last_name=last,
        phone_number=phone,
        origin=origin,
        referral=referral,
        utm=Utm(source, medium, campaign),
        registered_at=at(created[0]),
    )
