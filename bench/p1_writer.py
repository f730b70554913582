"""P1's rows for the shape with the store's writer in its own process
(`ingress --writer`): the ingress process alone on the server core, the
writer process and the supervisor on the load generator's core beside wrk.

Beside the rate, each core's ceiling: the rate at which that core's CPU an
event (measured in the same round) would keep it busy all the time, as a
ratio of the bare app. On a 2-core machine the writer shares wrk's core, so
where the generator core's ceiling is under 0.50x, no cut in the ingress
can pass P1 in this shape at this pace: the row names the core that binds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.report import Row

if TYPE_CHECKING:  # it imports this module
    from bench.wrk import WrkResult


def writer_rows(
    runs: list[WrkResult], own: list[float], base: WrkResult, ran_out: str = ""
) -> list[Row]:
    """P1 with the append in the store's writer process (`ingress --writer`),
    and the ceilings of its two cores in the same round; `ran_out` notes
    rounds that used up their webhooks."""
    i = max(range(len(runs)), key=lambda k: runs[k].rps)
    got = runs[i]
    ingress_us = own[i] / got.requests * 1e6
    tree_us = got.cpu_share * got.seconds / got.requests * 1e6
    wrk_us = got.gen_share * got.seconds / got.requests * 1e6
    # The writer process and the supervisor: the tree's CPU but the ingress's.
    other_us = tree_us - ingress_us + wrk_us
    # A round answered with errors (503s come back fast) proves no rate.
    bad = sum(r.non2xx + r.errors for r in runs)
    rate = Row(
        "P1 ingest path, ingress + the store's writer process",
        got.rps,
        "req/s",
        base.rps,
        got.rps / base.rps,
        ">= 0.50x",
        got.rps / base.rps >= 0.5 and bad == 0,
        note="`python -m service ingress --writer`: the ingress process on its "
        "own core sends its envelopes to the writer process (with the "
        "supervisor on the load generator's core, as PostgreSQL runs beside "
        "it in --pg), which seals, inserts and commits them; rounds "
        f"{', '.join(f'{r.rps:,.0f}' for r in runs)} req/s{ran_out}, {bad} "
        "non-2xx or socket errors; the ingress "
        f"process {own[i] / got.seconds:.0%} of its core, "
        f"{ingress_us:.0f} us of CPU an event; all three "
        f"processes {got.cpu_share / got.rps * 1e6:.0f} us an event",
    )
    ceilings = []
    for label, us, note in (
        ("the ingress's core", ingress_us, "the ingress process alone"),
        (
            "the load generator's core",
            other_us,
            f"the writer process and the supervisor {other_us - wrk_us:.0f} us "
            f"an event, wrk {wrk_us:.0f} us",
        ),
    ):
        ceiling = 1e6 / us if us > 0 else 0.0
        ceilings.append(
            Row(
                f"P1 writer shape, ceiling of {label}",
                ceiling,
                "req/s",
                base.rps,
                ceiling / base.rps,
                note=f"the rate at which {label} would be busy all the time "
                f"at the best round's CPU an event ({us:.0f} us: {note}); "
                "above 0.50x of the bare app it leaves room for P1's target, "
                "below it that core binds on this machine whatever the other does",
            )
        )
    return [rate, *ceilings]
