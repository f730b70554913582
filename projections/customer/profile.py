"""Profile: the email any event carries, the rest from `Customer created`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..events import RecordedEvent
from ..payload_types import CustomerCreated
from .state import Created, CustomerState, EmailSeen
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


def on_customer_created(
    state: CustomerState, event: RecordedEvent, p: CustomerCreated, us: int
) -> None:
    if newer(us, event.id, state.created):
        state.created = Created(
            us,
            event.id,
            p.first_name,
            p.last_name,
            p.phone_number,
            p.origin,
            p.referral,
            p.utm_source,
            p.utm_medium,
            p.utm_campaign,
        )


# The register's tuple made in one C call: a NamedTuple's own constructor is
# Python code, and this runs for every applied event.
_register = tuple.__new__


def note_email(state: CustomerState, event: RecordedEvent, us: int) -> None:
    """Any applied event may carry the email (base payload, not properties).

    Tolerant: a blank or non-string email is as good as none; it cannot poison.
    """
    email = event.body.get("email")
    if type(email) is str and newer(us, event.id, state.email):
        email = email.strip()
        if email:
            state.email = _register(EmailSeen, (us, event.id, email))


def profile_view(state: CustomerState) -> Profile:
    seen = state.email
    created = state.created
    if created is None:
        return Profile(
            email=seen.email if seen else None,
            email_seen_at=(at(seen.us), seen.event_id) if seen else None,
            first_name=None,
            last_name=None,
            phone_number=None,
            origin=None,
            referral=None,
            utm=Utm(),
            registered_at=None,
        )
    return Profile(
        email=seen.email if seen else None,
        email_seen_at=(at(seen.us), seen.event_id) if seen else None,
        first_name=created.first_name,
        last_name=created.last_name,
        phone_number=created.phone_number,
        origin=created.origin,
        referral=created.referral,
        utm=Utm(created.utm_source, created.utm_medium, created.utm_campaign),
        registered_at=at(created.us),
    )
