"""The hand-off gives the worker exactly what decoding the store gives: every
event type, every field, in the store's order, whatever else wrote to the
store in between (another writer, an erasure, a gap, a restart)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.events import EventType, RecordedEvent
from projections.fields import PoisonEvent
from projections.payloads import read_payload
from projections.projector import Projector
from service.bootstrap import Container
from service.eventstore import Appended
from service.handoff import HandOff
from service.ingest import Envelope, parse_envelope
from service.storedheader import StoredHeader
from testkit.containers import pg_container, sqlite_container
from testkit.erasure_model import balance_changed, check
from testkit.traffic import webhooks

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
Containers = Callable[[], AbstractContextManager[Container]]


@pytest.fixture(params=["sqlite", "postgres"])
def containers(request: pytest.FixtureRequest) -> Containers:
    if request.param == "postgres":
        pg_url = request.getfixturevalue("pg_url")
        return lambda: pg_container(pg_url)
    return sqlite_container


def shape(events: Sequence[RecordedEvent]) -> list[tuple[Any, ...]]:
    """Everything a reader can tell apart: the fields, their types and zones
    (repr: a Decimal and a float compare equal), the raw bytes and the typed
    payload the API would send."""
    return [(e, repr(e), repr(e.body), e.raw, payload(e)) for e in events]


def payload(e: RecordedEvent) -> str | None:
    if e.type is None or e.kind:
        return None
    try:
        return repr(read_payload(e))
    except PoisonEvent as poison:
        return f"poison: {poison}"


def handing_off(
    c: Container,
) -> tuple[HandOff, Callable[[Sequence[Envelope]], list[Appended]]]:
    handoff = HandOff(c.events)
    handoff.follow(True)
    return handoff, handoff.recording(c.events.append)


def every_kind() -> list[Envelope]:
    """The kit's mix until every type has shown up, an unknown type, and
    traceparents on some."""
    out = []
    seen: set[EventType | None] = set()
    for n, w in enumerate(webhooks(5000, 30, tag="h")):
        out.append(parse_envelope(w.body, w.type_name, traceparent=TRACE * (n % 2)))
        seen.add(w.type)
        if seen >= set(EventType) and len(out) >= 100:
            break
    assert seen >= set(EventType)
    body = {
        "id": "x-1",
        "customerId": "c-x",
        "createdAt": "2026-01-02T03:04:05.678+02:00",
    }
    out.append(parse_envelope(json.dumps(body).encode(), "Something new"))
    return out


def test_handed_off_events_equal_the_stored_ones(containers: Containers) -> None:
    with containers() as c:
        handoff, append = handing_off(c)
        envelopes = every_kind()
        for i in range(0, len(envelopes), 7):
            # Duplicates in the batch and of stored ids are not handed off.
            append([*envelopes[i : i + 7], envelopes[i], envelopes[0]])
        stored = c.events.read(0, 100_000)
        assert handoff.held() == len(stored) == len(envelopes)
        handed = handoff.read(0, 100_000)
        assert shape(handed) == shape(stored)
        assert handoff.taken == len(stored) and handoff.held() == 0


def test_an_erasure_drops_what_is_held_of_its_customer(containers: Containers) -> None:
    later = datetime.now(UTC) + timedelta(days=1)
    with containers() as c:
        handoff, append = handing_off(c)
        append(
            [
                balance_changed("e1", "ana", 1, later),
                balance_changed("e2", "bob", 2, later),
            ]
        )
        c.privacy().erase(
            "ana"
        )  # another process's erasure, as far as the hand-off knows
        append(
            [
                balance_changed("e4", "ana", 4, later),
                balance_changed("e5", "bob", 5, later),
            ]
        )
        stored = c.events.read(0, 100)
        first = handoff.read(0, 1)
        assert first[0].redacted and shape(first) == shape(
            stored[:1]
        )  # its key is gone
        assert shape(handoff.read(1, 2)) == shape(stored[1:3])
        # The erasure's record dropped ana's later event too (it is read
        # from the store): only bob's is still held.
        assert handoff.held() == 1
        assert shape(handoff.read(3, 100)) == shape(stored[3:])
        assert handoff.taken == 2


def test_held_events_are_bounded_in_number_and_age() -> None:
    with sqlite_container() as c:
        handoff = HandOff(c.events, limit=3, max_age=0.2)
        append = handoff.recording(c.events.append)
        now = datetime.now(UTC)
        append([balance_changed("e0", "ana", 1, now)])
        assert handoff.held() == 0  # its worker does not hold the lease
        handoff.follow(True)
        append([balance_changed(f"e{n}", "ana", n, now) for n in range(1, 6)])
        assert handoff.held() == 3
        time.sleep(0.3)
        append([balance_changed("e6", "bob", 6, now)])
        assert handoff.held() == 1
        handoff.follow(False)  # lost the lease: nothing kept for another worker
        assert handoff.held() == 0
        assert shape(handoff.read(0, 100)) == shape(c.events.read(0, 100))


# Steps: (kind, customer, argument).
steps = st.lists(
    st.one_of(
        st.tuples(st.just("ours"), st.integers(0, 2), st.integers(1, 3)),
        st.tuples(st.just("theirs"), st.integers(0, 2), st.integers(1, 2)),
        st.tuples(st.just("erase"), st.integers(0, 2), st.just(0)),
        st.tuples(st.just("work"), st.just(0), st.integers(1, 5)),
        # a stale or foreign entry at a position the store fills otherwise
        st.tuples(st.just("phantom"), st.integers(0, 2), st.integers(1, 3)),
        st.tuples(st.just("restart"), st.just(0), st.just(0)),
    ),
    min_size=4,
    max_size=40,
)


def run(c: Container, program: list[tuple[str, int, int]]) -> None:
    handoff, append = handing_off(c)
    privacy = c.privacy()
    projector = Projector(c.models, c.models.current_generation(refresh=True))
    now = datetime.now(UTC)

    def work(limit: int) -> int:
        stored = c.events.read(projector.position, limit)
        handed = handoff.read(projector.position, limit)
        assert shape(handed) == shape(stored)
        if handed:
            projector.apply(handed)
        return len(handed)

    for n, (kind, who, arg) in enumerate(program):
        cid = ("ana", "bob", "cy")[who]
        # Created before or after the erasures, so some are stored redacted.
        when = now + timedelta(days=1 if n % 3 else -1, seconds=n)
        batch = [balance_changed(f"e{n}.{k}", cid, n + k, when) for k in range(arg)]
        if kind == "ours":
            append([*batch, batch[0]])
        elif kind == "theirs":
            c.events.append(batch)
        elif kind == "erase":
            privacy.finish(privacy.erase(cid))
        elif kind == "work":
            work(arg)
        elif kind == "phantom":
            # Held for the next position, which another writer then takes:
            # a header sealed under the customer's live key (when they have
            # one), beside bytes the store never got.
            position = c.events.head() + 1
            env = batch[0]
            live = c.events.keyring.live_ids([cid]).get(cid) or "no-key-yet"
            header = StoredHeader(env.id, cid, env.type_name, env.created_at, now, live)
            claimed = Appended("accepted", position, (header, b"not stored"))
            handoff.hold([env], [claimed])
            c.events.append([balance_changed(f"t{n}", cid, n, when)])
        else:  # the process restarts: nothing held survives it
            handoff, append = handing_off(c)
    while work(3):
        pass
    check(c)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=steps)
def test_sqlite_worker_sees_the_store_whatever_wrote_in_between(
    program: list[tuple[str, int, int]],
) -> None:
    with sqlite_container() as c:
        run(c, program)


@pytest.mark.postgres
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(program=steps)
def test_postgres_worker_sees_the_store_whatever_wrote_in_between(
    pg_url: str, program: list[tuple[str, int, int]]
) -> None:
    with pg_container(pg_url) as c:
        run(c, program)
