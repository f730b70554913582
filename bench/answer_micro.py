"""The CPU a stored answer costs, from the fold state and through the view,
in one run: `.venv/bin/python -m bench.answer_micro`.

Events of the kit's mix (10 an average customer) are appended into a fresh
SQLite store by bench/data.py, folded into one state per customer, and each
way encodes every state, in interleaved rounds; the best round of each is
printed as process CPU per answer.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from bench.data import populate
from projections.customer.model import fold, view
from projections.customer.state import CustomerState
from projections.events import RecordedEvent
from service.backends.sqlite.store import open_sqlite
from service.rpc.answers import encode_answer
from testkit.customer_message import customer_to_proto


def through_view(state: CustomerState) -> bytes:
    return customer_to_proto(view(state)).SerializeToString()


def states(customers: int) -> list[CustomerState]:
    with tempfile.TemporaryDirectory() as tmp:
        populate(Path(tmp), customers * 10, customers, tag="answers")
        store, _quarantine, factory = open_sqlite(Path(tmp))
        try:
            by_customer: dict[str, list[RecordedEvent]] = defaultdict(list)
            after = 0
            while batch := store.read(after, 10_000):
                for e in batch:
                    by_customer[e.customer_id].append(e)
                after = batch[-1].position
        finally:
            factory.close()
    return [fold(cid, events).state for cid, events in by_customer.items()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    all_states = states(args.customers)
    ways: dict[str, Callable[[CustomerState], bytes]] = {
        "view + customer_to_proto": through_view,
        "encode_answer (from state)": encode_answer,
    }
    assert all(through_view(s) == encode_answer(s) for s in all_states)
    best = dict.fromkeys(ways, float("inf"))
    for _ in range(args.rounds):
        for name, way in ways.items():
            t = time.process_time()
            for s in all_states:
                way(s)
            best[name] = min(best[name], time.process_time() - t)
    print(f"{len(all_states)} states, best of {args.rounds} rounds, CPU us/answer:")
    for name, cpu in best.items():
        print(f"  {name:28} {cpu / len(all_states) * 1e6:7.2f}")
    old, new = best.values()
    print(f"  ratio {old / new:.2f}x")


if __name__ == "__main__":
    main()
