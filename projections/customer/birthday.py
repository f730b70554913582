"""Birthday: age and when it was last celebrated, from the newest one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..events import RecordedEvent
from ..payload_types import CustomerBirthday
from .state import BirthdaySet, CustomerState
from .timekeys import at, newer


@dataclass(frozen=True, slots=True)
class Birthday:
    age: int | None = None
    last_celebrated_at: datetime | None = None


def on_birthday(
    state: CustomerState, event: RecordedEvent, p: CustomerBirthday, us: int
) -> None:
    if newer(us, event.id, state.birthday):
        state.birthday = BirthdaySet(us, event.id, p.age)


def birthday_view(state: CustomerState) -> Birthday:
    newest = state.birthday
    if newest is None:
        return Birthday()
    return Birthday(newest.age, at(newest.us))
