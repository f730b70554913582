"""P1's request files: never-seen signed webhooks, a warm-up file that
creates every customer, then one file per measured round."""

from __future__ import annotations

import math
from pathlib import Path

from bench import data
from bench.context import Context
from testkit import traffic


def warm_file(ctx: Context, tag: str) -> Path:
    """A warm-up file of never-seen signed webhooks: one creates each customer."""
    n, warm = ctx.sizes.p1_customers, ctx.dir("p1") / f"{tag}-warm.txt"
    data.write_requests(warm, traffic.webhooks(n, n, tag=tag))
    return warm


def round_files(ctx: Context, tag: str, rounds: int, n: int) -> list[Path]:
    """One file per measured round of `n` never-seen signed webhooks each
    (after the warm-up file's, to the warm-up's customers)."""
    customers, mains = ctx.sizes.p1_customers, []
    for r in range(rounds):
        path = ctx.dir("p1") / f"{tag}-round{r}.txt"
        hooks = traffic.webhooks(n, customers, tag=tag, offset=customers + r * n)
        data.write_requests(path, hooks)
        mains.append(path)
    return mains


def request_files(ctx: Context, tag: str, rounds: int) -> tuple[Path, list[Path]]:
    """A warm-up file (it creates every customer), then one file per measured
    round of the sizes' count, all of never-seen signed webhooks."""
    return warm_file(ctx, tag), round_files(ctx, tag, rounds, ctx.sizes.p1_requests)


# A measured round's unique webhooks, over what the bare app answered a
# second in its warm-up times the round's seconds: wrk stops sending when a
# file runs out but reports the whole run's duration, so a file too small
# would cap the rate a shape can show (a fixed 120,000 capped every shape at
# 12,000 req/s, which the writer shape reached at fast paces). None on one
# core outruns the bare app answering a constant; the margin is the noise
# between the warm-up and the rounds.
UNIQUE_MARGIN = 1.25


def unique_requests(ctx: Context, bare_rps: float) -> int:
    """How many never-seen webhooks a measured round's file holds."""
    s = ctx.sizes
    return max(s.p1_requests, math.ceil(bare_rps * s.load_seconds * UNIQUE_MARGIN))
