"""The erasure interleaving model: programs of appends, erasures, worker
steps and rebuilds run over a real store, and the check that each
customer's read model equals a fold of the events still readable in the
log. Shared by the property test and the stress test of erasures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from projections.customer.codec import decode_state
from projections.customer.model import CustomerState
from projections.projector import Projector, fold_batch
from projections.rebuild import rebuild
from service.bootstrap import Container
from service.ingest import Envelope, parse_envelope
from service.privacy import Erasure

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
