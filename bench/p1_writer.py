"""P1's row for the shape with the store's writer in its own process
(`ingress --writer`): the ingress process alone on the server core."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.report import Row

if TYPE_CHECKING:  # it imports this module
    from bench.p1_ingest import WrkResult


def writer_row(runs: list[WrkResult], own: list[float], base: WrkResult) -> Row:
    """P1 with the append in the store's writer process (`ingress --writer`)."""
    i = max(range(len(runs)), key=lambda k: runs[k].rps)
    got = runs[i]
    return Row(
        "P1 ingest path, ingress + the store's writer process",
        got.rps,
        "req/s",
        base.rps,
        got.rps / base.rps,
        ">= 0.50x",
        got.rps / base.rps >= 0.5,
        note="`python -m service ingress --writer`: the ingress process on its "
        "own core sends its envelopes to the writer process (with the "
        "supervisor on the load generator's core, as PostgreSQL runs beside "
        "it in --pg), which seals, inserts and commits them; rounds "
        f"{', '.join(f'{r.rps:,.0f}' for r in runs)} req/s; the ingress "
        f"process {own[i] / got.seconds:.0%} of its core, "
        f"{own[i] / got.requests * 1e6:.0f} us of CPU an event; all three "
        f"processes {got.cpu_share / got.rps * 1e6:.0f} us an event",
    )
