"""An erasure removes exactly what precedes its record in the log, whichever
of the erasure call and the worker gets there first.

Hypothesis draws programs of steps over real stores (SQLite and PostgreSQL,
built through the composition root): webhooks appended for a few
customers, created before or after "now" (so each erasure has events on both
sides of its record), erasures, the worker applying a few events at a time,
erasure calls finishing at any point, and rebuilds. At the end the worker
catches up, every erasure call finishes, and each customer's read model must
equal a fold of the events still readable in the log (the reference a
rebuild would produce).
"""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from projections.customer.codec import decode_state
from projections.customer.model import CustomerState
from projections.projector import Projector, fold_batch
from projections.rebuild import rebuild
from service.bootstrap import Container, build
from service.config import Settings
from service.ingest import Envelope, parse_envelope
from service.privacy import Erasure
from testkit.keys import master_key_file

CUSTOMERS = ("ana", "bob", "cy")

Step = tuple[str, int, int]
steps = st.lists(
    st.one_of(
        # (kind, customer index, argument)
        st.tuples(st.just("send"), st.integers(0, 2), st.integers(-1, 1)),
        st.tuples(st.just("erase"), st.integers(0, 2), st.just(0)),
        st.tuples(st.just("work"), st.just(0), st.integers(1, 4)),
        st.tuples(st.just("finish"), st.just(0), st.integers(0, 5)),
        # a rebuild (small batches, so an erasure's record can fall anywhere)
        st.tuples(st.just("rebuild"), st.just(0), st.integers(1, 3)),
    ),
    min_size=4,
    max_size=40,
)
# The report's case: the worker applies the erasure's record and a later
# event of the customer's before the erasure call finishes.
REPORTED: list[Step] = [
    ("send", 0, 1),
    ("erase", 0, 0),
    ("send", 0, 1),
    ("work", 0, 4),
    ("finish", 0, 0),
]


def balance_changed(
    event_id: str, customer: str, amount: int, when: datetime
) -> Envelope:
    body = {
        "id": event_id,
        "customerId": customer,
        "email": f"{customer}@example.com",
        "createdAt": when.isoformat(),
        "properties": {"amount": amount, "reference": event_id},
    }
    return parse_envelope(json.dumps(body).encode(), "Balance changed")


Model = dict[str, tuple[CustomerState, list[int], list[str]]]


def live_states(c: Container) -> dict[str, CustomerState]:
    return {cid: decode_state(s) for cid, s in c.models.iter_states()}


def live_model(c: Container) -> Model:
    """Each customer's state, history positions and ledger's event ids."""
    return {
        cid: (
            state,
            c.models.history(cid, after=0, limit=100_000),
            [e.event_id for e in c.models.ledger(cid, after=(-1, ""), limit=100_000)],
        )
        for cid, state in live_states(c).items()
    }


def reference_model(c: Container) -> Model:
    """A fold of every event the log still lets anyone read, in order."""
    events = c.events.read(0, 1_000_000)
    if not events:
        return {}
    batch = fold_batch(events, {})
    return {
        row.customer_id: (
            decode_state(row.state),
            sorted(p for cid, p in batch.history if cid == row.customer_id),
            [r[2] for r in sorted(batch.ledger) if r[0] == row.customer_id],
        )
        for row in batch.customers
    }


def run_program(c: Container, program: list[Step]) -> None:
    privacy = c.privacy()
    projector = Projector(c.models, c.models.current_generation(refresh=True))
    pending: list[Erasure] = []
    now = datetime.now(UTC)
    for n, (kind, who, arg) in enumerate(program):
        cid = CUSTOMERS[who]
        if kind == "send":
            # Created a day before or after the erasures (arg -1 / 1), or now.
            when = now + timedelta(days=arg, seconds=n)
            c.events.append([balance_changed(f"e{n}", cid, n + 1, when)])
        elif kind == "erase":
            erasure = privacy.erase(cid)
            if erasure.position:
                pending.append(erasure)
        elif kind == "work":
            events = c.events.read(projector.position, arg)
            if events:
                projector.apply(events)
        elif kind == "rebuild":
            rebuild(c.events, c.models, batch_size=arg, keep_states=1)
            # The worker carries on in the new generation, from its position.
            projector = Projector(c.models, c.models.current_generation(refresh=True))
        elif pending:  # an erasure call finishes, the worker anywhere
            privacy.finish(pending.pop(arg % len(pending)))
    while events := c.events.read(projector.position, 100):
        projector.apply(events)
    for erasure in pending:
        privacy.finish(erasure)


def check(c: Container) -> None:
    live, expected = live_model(c), reference_model(c)
    assert live.keys() == expected.keys()
    for cid, model in expected.items():
        assert live[cid] == model, cid


@contextmanager
def sqlite_container() -> Iterator[Container]:
    with tempfile.TemporaryDirectory() as tmp:
        c = build(
            Settings.from_environ({"DATA_DIR": str(Path(tmp))}, require_secret=False)
        )
        try:
            yield c
        finally:
            c.close()


@contextmanager
def pg_container(pg_url: str) -> Iterator[Container]:
    """A store in a schema of its own (one per example), dropped after."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    base = pg_url.split("?")[0]
    c = build(
        Settings.from_environ(
            {
                "DATABASE_URL": f"{base}?schema={schema}",
                "MASTER_KEY_FILE": str(master_key_file()),
            },
            require_secret=False,
        )
    )
    try:
        yield c
    finally:
        c.close()
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # type: ignore[arg-type]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=steps)
@example(program=REPORTED)
def test_sqlite_erasures_interleaved_with_appends_and_the_worker(
    program: list[Step],
) -> None:
    with sqlite_container() as c:
        run_program(c, program)
        check(c)


def test_an_erasure_finishing_after_the_worker_passed_it_keeps_later_events() -> None:
    # The reproduction, one step at a time: the worker applies the erasure's
    # record and an event after it before the erasure call finishes.
    later = datetime.now(UTC) + timedelta(days=1)
    with sqlite_container() as c:
        privacy = c.privacy()
        c.events.append([balance_changed("e1", "ana", 5, later)])
        erasure = privacy.erase("ana")
        c.events.append([balance_changed("e2", "ana", 7, later)])
        projector = Projector(c.models, c.models.current_generation(refresh=True))
        projector.apply(c.events.read(0, 100))
        privacy.finish(erasure)
        (state,) = live_states(c).values()
        assert state.event_count == 1 and state.points_sum == 7
        check(c)


@pytest.mark.postgres
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(program=steps)
@example(program=REPORTED)
def test_postgres_erasures_interleaved_with_appends_and_the_worker(
    pg_url: str, program: list[Step]
) -> None:
    with pg_container(pg_url) as c:
        run_program(c, program)
        check(c)
