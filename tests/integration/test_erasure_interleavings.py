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

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings

from projections.projector import Projector
from testkit.containers import pg_container, sqlite_container
from testkit.erasure_model import (
    REPORTED,
    Step,
    balance_changed,
    check,
    live_states,
    run_program,
    steps,
)


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
