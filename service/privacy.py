"""Erasure and export of one customer's personal data.

Erasure is crypto-shredding: one transaction destroys the customer's data
key (their stored events and quarantined requests become unreadable, here
and in every copy of the store), deletes their quarantined requests,
records the erasure in the audit trail and appends the erasure's record to
the event log. The projections delete the customer's read models when they
reach that record, in log order, so neither a batch in flight nor a rebuild
can bring them back. The caller then deletes the rows at once as well, but
only while the worker has not reached the record (rows held after it come
from events after the erasure), and scrubs what the database keeps of
deleted data (docs/privacy.md).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from projections.customer.model import Customer
from projections.events import RecordedEvent
from projections.stores.sql import SqlReadModels
from service import logs
from service.eventstore import EventStore
from service.quarantine import Quarantine, QuarantinedRequest
from service.reads import CustomerReads
from service.storedevents import erasure_marker

log = logs.get(__name__)
_PAGE = 500
# How long an erasure waits for the worker to reach its record in the log
# before deleting the read models itself (a worker far behind, or none).
WORKER_WAIT_SECONDS = 10.0


class _NothingToErase(Exception):
    """Nothing held: record the erasure without a record in the log."""


class _ErasedMeanwhile(Exception):
    """Another erasure of the customer committed while this one waited."""

    def __init__(self, erased_at: str) -> None:
        super().__init__(erased_at)
        self.erased_at = erased_at


@dataclass(frozen=True)
class Erasure:
    customer_id: str
    erased: bool  # something was held
    events: int
    erased_at: datetime
    position: int  # of the erasure's record in the log; 0 if none


@dataclass(frozen=True)
class Export:
    customer: Customer
    events: list[RecordedEvent]
    quarantined: list[QuarantinedRequest]


class Privacy:
    def __init__(
        self,
        events: EventStore,
        quarantine: Quarantine,
        models: SqlReadModels,
        scrub: Callable[[], None],
    ) -> None:
        self.events = events
        self.quarantine = quarantine
        self.models = models
        self.scrub = scrub
        self.reads = CustomerReads(models, events)

    def positions(self, customer_id: str) -> list[int]:
        """The customer's stored events, from the history index."""
        found: list[int] = []
        while page := self.models.history(
            customer_id, after=found[-1] if found else 0, limit=_PAGE
        ):
            found.extend(page)
        return found

    def erase(self, customer_id: str) -> Erasure:
        """The atomic part: keys, quarantine, audit and the log's record.
        Then `finish` (the read models now, and the scrub)."""
        for _attempt in range(3):
            erasure = self._erase_once(customer_id)
            if erasure is not None:
                return erasure
        raise RuntimeError("could not settle an erasure racing new events")

    def _erase_once(self, customer_id: str) -> Erasure | None:
        """None: the customer's first event arrived meanwhile; try again.

        Erasures of one customer take turns (the customer's key row is
        held until commit); one that finds another erasure of the customer
        committed since it began, and nothing new since, is answered by that
        one: `erased` false, no second audit record, and the other's record
        to wait for (`position`)."""
        keyring = self.events.keyring
        erased_at = datetime.now(UTC)
        seen = keyring.last_erasure(customer_id)
        positions = self.positions(customer_id)
        present = bool(positions) or self.models.get_state(customer_id) is not None

        def settled(c: Any) -> None:
            keyring.lock_customer(c, customer_id)
            when = keyring.erased_since(c, customer_id, seen)
            if when is not None:
                raise _ErasedMeanwhile(when)

        def work(c: Any) -> None:
            settled(c)
            had_key = keyring.shred(c, customer_id, erased_at, len(positions))
            self.quarantine.erase_customer(c, customer_id)
            legacy = self.events.legacy.redact(c, positions)
            if not (had_key or present or legacy):
                raise _NothingToErase

        try:
            position = self.events.append_erasure(customer_id, erased_at, work)
        except _ErasedMeanwhile as other:
            return self._answered_by(customer_id, other.erased_at)
        except _NothingToErase:
            try:
                with self.events.index.transaction(commit=True) as c:
                    settled(c)
                    had_key = keyring.shred(c, customer_id, erased_at, 0)
                    self.quarantine.erase_customer(c, customer_id)
            except _ErasedMeanwhile as other:
                return self._answered_by(customer_id, other.erased_at)
            if had_key:
                return None
            return Erasure(customer_id, False, 0, erased_at, 0)
        log.info(
            "customer erased",
            customer_id=customer_id,
            events=len(positions),
            position=position,
        )
        return Erasure(customer_id, True, len(positions), erased_at, position)

    def _answered_by(self, customer_id: str, erased_at: str) -> Erasure:
        """The answer of an erasure another one of the same customer settled:
        that one's time and record (0 if it had nothing to record)."""
        when = datetime.fromisoformat(erased_at)
        marker = erasure_marker(customer_id, when).originator_id
        assert isinstance(marker, uuid.UUID)
        position = self.events.index.positions([marker]).get(marker, 0)
        log.info("erasure answered by a concurrent one", customer_id=customer_id)
        return Erasure(customer_id, False, 0, when, position)

    def finish(self, erasure: Erasure) -> None:
        """Delete the read models now if the worker has not reached the
        erasure's record (the record does it again, in order; once applied,
        the rows held are from events after it and stay), and scrub deleted
        pages and logs of the databases. An erasure that appended no record
        found nothing to delete."""
        if erasure.position:
            self.models.erase_customer(erasure.customer_id, before=erasure.position)
        self.scrub()

    def export(self, customer_id: str) -> Export:
        """NotFound for an unknown or erased customer. Everything in memory:
        `loyalty export` streams instead (`iter_events`, `quarantined`)."""
        customer = self.reads.get(customer_id)
        return Export(
            customer,
            list(self.iter_events(customer_id)),
            list(self.quarantined(customer_id)),
        )

    def iter_events(self, customer_id: str) -> Iterator[RecordedEvent]:
        """The customer's stored events, decrypted, a page at a time: memory
        does not grow with how many they have."""
        after = 0
        while page := self.models.history(customer_id, after=after, limit=_PAGE):
            after = page[-1]
            for event in self.events.read_positions(page):
                if not event.kind:
                    yield event

    def quarantined(self, customer_id: str) -> Iterator[QuarantinedRequest]:
        return (q for q in self.quarantine if q.customer_id == customer_id)


def wait_applied(
    models: SqlReadModels, position: int, timeout: float, every: float = 0.05
) -> bool:
    """Poll until the read models have applied `position` (another process's
    worker); False if `timeout` ran out first."""
    deadline = time.monotonic() + timeout
    while models.applied_position() < position:
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)
    return True
