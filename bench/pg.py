"""PostgreSQL mode (`python -m bench --pg`): the production figures.

P1 in bench/pg_p1.py, P3 in bench/pg_p3.py, the database in bench/pgdb.py.

P1: `python -m service ingress --workers N` (N processes sharing the port
with SO_REUSEPORT; half the machine's cores, one on two), one `worker` and
one `api`, under wrk replaying unique signed webhooks, then P4's freshness
on the same deployment; afterwards the ingress is killed (SIGKILL) and
every position a 2xx named must be in the schema's stored_events. P3: the events
of SQLite P3, appended through EventStore.append, then a full rebuild into
PostgreSQL read models, timed in a child process, against reading them.

Every run uses a fresh schema, dropped at the end. Only wrk (and this
process) stay pinned to the generator core: with two cores, PostgreSQL, the
ingress processes and the worker have to share both.

    python -m bench.pg measure URL   # P3's timed part; prints one JSON line
    python -m bench.pg rebuild URL   # (what the P3 profile samples)
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from bench.context import Context
from bench.pg_p1 import run_p1
from bench.pg_p3 import read_all, rebuild_all, run_p3
from bench.pgdb import default_url, shown, unreachable
from bench.report import Row

# What `python -m bench --pg` asks of the database before it starts.
__all__ = ["BENCHMARKS", "TITLES", "default_url", "shown", "unreachable"]

BENCHMARKS: dict[str, Callable[[Context], list[Row]]] = {"P1": run_p1, "P3": run_p3}
TITLES = {"P1": "P1 ingest on PostgreSQL", "P3": "P3 rebuild on PostgreSQL"}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pg")
    parser.add_argument("what", choices=("measure", "rebuild"))
    parser.add_argument("url")
    args = parser.parse_args()
    if args.what == "rebuild":
        rebuild_all(args.url)
        return
    read_n, read_s = read_all(args.url)
    built_n, built_s = rebuild_all(args.url)
    read_s = min(read_s, read_all(args.url)[1])  # noise only slows a run down
    print(
        json.dumps(
            {"read": read_n, "read_s": read_s, "rebuilt": built_n, "rebuild_s": built_s}
        )
    )


if __name__ == "__main__":
    main()
