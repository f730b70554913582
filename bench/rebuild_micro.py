"""P3's rebuild, two trees of the code compared in one sitting: CPU an event
of the folding process and of its reader process, old and new alternated.

    python -m bench.rebuild_micro --old OTHER_TREE [--events 200000]
        [--customers 20000] [--rounds 3] [--data DIR]

Each round rebuilds the same store once with each tree's code (its own
interpreter, `.venv/bin/python` of the tree), in a fresh read-model file,
and reads the folding process's CPU (its own) and the reader's (its reaped
children's): wall time is not comparable on a machine others load. The
store is filled once (10 events a customer, as P3) and kept in --data.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from bench import data, p3_rebuild, procs
from service.backends.sqlite.files import MODELS_FILE

# Runs in the tree under test: only what both trees have (bench.p3_rebuild).
_ONCE = """
import json, sys, time
from pathlib import Path
from bench.p3_rebuild import cpu_seconds, rebuild
# Imported before the clock starts: the rebuild's work is compared, not imports.
import projections.rebuild, projections.stores.sqlite, service.rebuildreader
import service.backends.sqlite.backend, service.rpc.answers
cpu0 = cpu_seconds()
n, seconds = rebuild(Path(sys.argv[1]))
cpu1 = cpu_seconds()
print(json.dumps({"events": n, "wall_s": seconds,
                  "folder_s": cpu1[0] - cpu0[0], "reader_s": cpu1[1] - cpu0[1]}))
"""


def once(tree: Path, store: Path) -> dict[str, float]:
    models = store / MODELS_FILE
    p3_rebuild.remove_read_models(store)
    out = subprocess.run(
        [str(tree / ".venv/bin/python"), "-c", _ONCE, str(store)],
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert not models.exists() or models.stat().st_size > 0
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.rebuild_micro")
    parser.add_argument("--old", type=Path, required=True, help="the other tree")
    parser.add_argument("--new", type=Path, default=procs.ROOT)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=0, help="events / 10")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    customers = args.customers or args.events // 10
    store = args.data or Path(tempfile.mkdtemp(prefix="rebuild-micro-"))
    if not (store / "events.sqlite").exists():
        print(f"filling {store}: {args.events:,} events, {customers:,} customers")
        data.populate(store, args.events, customers, tag="p3")
    results: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    for r in range(args.rounds):
        order = ("old", "new") if r % 2 == 0 else ("new", "old")
        for name in order:
            got = once(trees[name], store)
            results[name].append(got)
            n = got["events"]
            folder, reader = got["folder_s"] / n * 1e6, got["reader_s"] / n * 1e6
            print(
                f"round {r + 1} {name}: folder {folder:.2f} us/event, "
                f"reader {reader:.2f}, wall {n / got['wall_s']:,.0f}/s",
                flush=True,
            )
    for name, runs in results.items():
        n = runs[0]["events"]
        folder = min(x["folder_s"] for x in runs) / n * 1e6
        reader = min(x["reader_s"] for x in runs) / n * 1e6
        print(f"{name}: best folder {folder:.2f} us/event, best reader {reader:.2f}")


if __name__ == "__main__":
    main()
