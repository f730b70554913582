"""Read-side queries: the read models decoded into views, and paging.

Synchronous (the stores are); the gRPC layer calls these in a thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from projections.customer.codec import decode_state
from projections.customer.model import Customer, view
from projections.customer.points import LedgerEntry
from projections.events import RecordedEvent
from projections.stores.sql import SqlReadModels
from service.errors import NotFound
from service.eventstore import EventStore
from service.rpc.answers import encode_answer

T = TypeVar("T")
Encoded = list[bytes]  # serialized messages (the class below has a `list`)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    more: bool


def to_view(blob: bytes) -> Customer:
    return view(decode_state(blob))


class CustomerReads:
    def __init__(self, models: SqlReadModels, events: EventStore) -> None:
        self.models = models
        self.events = events

    def get(self, customer_id: str) -> Customer:
        blob = self.models.get_state(customer_id)
        if blob is None:
            raise NotFound("customer not found")
        return to_view(blob)

    def lookup(self, email: str) -> Customer:
        blob = self.models.lookup_email(email)
        if blob is None:
            raise NotFound("no customer with that email")  # never echo the email
        return to_view(blob)

    # -- stored answers: the Customer message's bytes, sent as they are ------

    def _answer(self, customer_id: str, answer: bytes | None) -> bytes:
        """A stored answer; one the read models hold none for (a state this
        build could not decode when it made answers) is made now."""
        if answer is not None:
            return answer
        blob = self.models.get_state(customer_id)
        if blob is None:
            raise NotFound("customer not found")  # never echo the request
        return encode_answer(decode_state(blob))

    def get_answer(self, customer_id: str) -> bytes:
        row = self.models.get_answer(customer_id)
        if row is None:
            raise NotFound("customer not found")  # never echo the request
        return self._answer(customer_id, row[0])

    def batch_get_answers(self, ids: Sequence[str]) -> Encoded:
        """All or nothing, in request order (repeats repeated)."""
        found = self.models.get_answers(list(dict.fromkeys(ids)))
        missing = [i for i in dict.fromkeys(ids) if i not in found]
        if missing:
            raise NotFound(
                f"{len(missing)} of the requested customers not found", len(missing)
            )
        answers = {cid: self._answer(cid, a) for cid, a in found.items()}
        return [answers[i] for i in ids]

    def lookup_answer(self, email: str) -> bytes:
        row = self.models.lookup_answer(email)
        if row is None:
            raise NotFound("no customer with that email")  # never echo the email
        return self._answer(*row)

    def list_answers(
        self, *, after: str, limit: int, tier: str | None
    ) -> tuple[Encoded, str | None]:
        """A page of answers and the last customer id when there are more."""
        rows = self.models.list_answers(after=after, limit=limit + 1, tier=tier)
        page = [self._answer(cid, a) for cid, a in rows[:limit]]
        return page, rows[limit - 1][0] if len(rows) > limit else None

    def _require(self, customer_id: str) -> None:
        if self.models.get_state(customer_id) is None:
            raise NotFound("customer not found")

    def history(
        self, customer_id: str, *, after: int, limit: int
    ) -> Page[RecordedEvent]:
        self._require(customer_id)
        positions = self.models.history(customer_id, after=after, limit=limit + 1)
        events = self.events.read_positions(positions[:limit])
        return Page(events, len(positions) > limit)

    def ledger(
        self, customer_id: str, *, after: tuple[int, str], limit: int
    ) -> Page[LedgerEntry]:
        self._require(customer_id)
        entries = self.models.ledger(customer_id, after=after, limit=limit + 1)
        return Page(entries[:limit], len(entries) > limit)
