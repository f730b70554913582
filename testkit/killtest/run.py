"""The whole kill test: plan, load under kills, check; and its command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from testkit.killtest.checks import check
from testkit.killtest.load import KillStats, SenderStats, kill_repeatedly, send_all
from testkit.killtest.report import Report
from testkit.launch import ServiceProcess
from testkit.traffic import deliveries as plan_deliveries
from testkit.traffic import plan_events


def run(
    kills: int = 20,
    events: int = 5000,
    connections: int = 32,
    seed: int | None = None,
    data_dir: Path | str | None = None,
    *,
    max_attempts: int = 200,
    progress: bool = False,
) -> Report:
    """Run the kill test against a fresh service in `data_dir` (a new
    temporary directory when None) and return the figures."""
    run_started = time.monotonic()
    seed = random.randrange(2**32) if seed is None else seed
    rnd = random.Random(seed)
    directory = Path(data_dir or tempfile.mkdtemp(prefix="killtest-")).resolve()
    report = Report(seed=seed, data_dir=str(directory))
    sent = plan_events(rnd, events)
    deliveries = plan_deliveries(rnd, sent)
    report.events = len(sent)
    report.customers = len({e.customer_id for e in sent})

    def say(message: str) -> None:
        if progress:
            print(message, file=sys.stderr, flush=True)

    svc = ServiceProcess(directory)
    svc.env.pop("DATABASE_URL", None)  # the SQLite default, checked in place
    svc.start()
    try:
        sender, killer = SenderStats(), KillStats()
        sender.deliveries = len(deliveries)
        say(
            f"sending {len(sent)} events as {len(deliveries)} deliveries over "
            f"{connections} connections, killing {kills} times (seed {seed})"
        )

        async def load() -> None:
            done = asyncio.Event()

            async def send() -> None:
                try:
                    await send_all(
                        svc, deliveries, connections, rnd, sender, max_attempts
                    )
                finally:
                    done.set()

            await asyncio.gather(
                send(), kill_repeatedly(svc, kills, rnd, sender, killer, done)
            )

        started = time.monotonic()
        asyncio.run(load())
        report.load_seconds = time.monotonic() - started
        report.deliveries_planned = sender.deliveries
        report.deliveries_made = sender.attempts
        report.answers_2xx = sender.ok
        report.accepted = sender.accepted
        report.duplicate = sender.duplicate
        report.connection_errors = sender.connection_errors
        report.timeouts = sender.timeouts
        report.answers_503 = sender.unavailable
        report.unexpected_answers = dict(sender.unexpected)
        report.retries = sender.retries
        report.gave_up = sender.gave_up
        report.kills = killer.kills
        report.kills_under_load = killer.under_load
        report.in_flight_at_kills = killer.in_flight_at_kills
        report.restart_failures = killer.restart_failures
        if killer.kills:
            report.mean_restart_seconds = killer.downtime / killer.kills
        if not killer.restart_failures:
            say(f"load done in {report.load_seconds:.1f} s; checking")
            try:
                check(svc, sent, sender, report)
            except Exception as e:  # reported as a failed check, with figures
                report.check_error = f"{type(e).__name__}: {e}"[:500]
    finally:
        svc.stop()
        levels = Counter(entry.get("level", "") for entry in log_entries(svc.log()))
        report.error_log_lines = levels["error"] + levels["critical"]
        report.warning_log_lines = levels["warning"]
    report.total_seconds = time.monotonic() - run_started
    if data_dir is None and report.ok:
        shutil.rmtree(directory, ignore_errors=True)
    return report


def log_entries(text: str) -> Iterator[dict[str, Any]]:
    """The JSON objects of a log that SIGKILLs wrote into: a process killed
    mid-line leaves that line's end missing, and its successor's first line
    then follows on the same line."""
    decoder = json.JSONDecoder()
    for line in text.splitlines():
        at = line.find("{")
        while at != -1:
            try:
                entry, end = decoder.raw_decode(line, at)
            except json.JSONDecodeError:
                at = line.find("{", at + 1)  # a torn object: skip to the next
                continue
            if isinstance(entry, dict):
                yield entry
            at = line.find("{", end)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs (default: 20)")
    parser.add_argument(
        "--events", type=int, default=5000, help="distinct events (default: 5000)"
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=32,
        help="concurrent sender connections (default: 32)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seeds the events, duplicates, back-offs and kill moments "
        "(default: random, printed)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="a new or empty directory (default: a temporary one, removed "
        "after a passing run)",
    )
    args = parser.parse_args(argv)
    report = run(
        args.kills,
        args.events,
        args.connections,
        args.seed,
        args.data_dir,
        progress=True,
    )
    print(report.text())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
