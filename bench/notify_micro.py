"""How `run --split`'s projector should hear the front's commits: a Unix
datagram per commit, or polling SQLite's `PRAGMA data_version`.

`python -m bench.notify_micro [--rate 200] [--seconds 3] [--rounds 3]`: a
writer commits to a SQLite file at `--rate` transactions a second; a
listener process hears each commit either from a datagram the writer
sends after it (what service/backends/sqlite/notify.py does) or by polling
`PRAGMA data_version` every 1, 5 or 20 ms. Printed per mode, best of the
rounds: the listener's CPU per notification (its whole CPU over the window,
idle waits included, divided by the commits), what the writer's extra
send costs, the idle listener's CPU a second, and the latency from commit
to "heard" (p50, p99).
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ADDRESS = b"\0loyalty-notify-micro"


def _listener(mode: str, db: str, seconds: float, out: Any) -> None:
    """Hear commits for `seconds`; send back (cpu seconds, heard times by seq)."""
    heard: dict[int, int] = {}
    cpu0 = time.process_time()
    deadline = time.monotonic() + seconds
    if mode == "datagram":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(ADDRESS)
        out.send("bound")
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data = sock.recv(32)
            except TimeoutError:
                break
            heard[int(data)] = time.monotonic_ns()
        sock.close()
    else:
        interval = float(mode.removeprefix("poll")) / 1000
        conn = sqlite3.connect(db)
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        seen = conn.execute("SELECT coalesce(max(seq), 0) FROM t").fetchone()[0]
        out.send("bound")
        while time.monotonic() < deadline:
            time.sleep(interval)
            now_version = conn.execute("PRAGMA data_version").fetchone()[0]
            if now_version != version:
                version, now = now_version, time.monotonic_ns()
                top = conn.execute("SELECT max(seq) FROM t").fetchone()[0]
                for seq in range(seen + 1, top + 1):
                    heard[seq] = now
                seen = top
        conn.close()
    out.send((time.process_time() - cpu0, heard))


@contextmanager
def _listening(mode: str, seconds: float) -> Iterator[tuple[sqlite3.Connection, Any]]:
    """A fresh SQLite file (the writer's connection) and a listener process
    in `mode` for `seconds`, bound; yields the connection and our pipe end."""
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "n.sqlite")
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY)")
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        child = ctx.Process(target=_listener, args=(mode, db, seconds, theirs))
        child.start()
        assert ours.recv() == "bound"
        try:
            yield conn, ours
        finally:
            child.join()
            conn.close()


def one_round(mode: str, rate: float, seconds: float) -> dict[str, float]:
    with _listening(mode, seconds + 0.5) as (conn, ours):
        send = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        send.setblocking(False)
        committed: dict[int, int] = {}
        send_cpu, n = 0.0, int(rate * seconds)
        start = time.monotonic()
        for seq in range(1, n + 1):
            time.sleep(max(0.0, start + seq / rate - time.monotonic()))
            conn.execute("INSERT INTO t VALUES (?)", (seq,))
            committed[seq] = time.monotonic_ns()
            if mode == "datagram":
                c0 = time.process_time()
                send.sendto(b"%d" % seq, ADDRESS)
                send_cpu += time.process_time() - c0
        cpu, heard = ours.recv()
        send.close()
    lat = sorted((heard[s] - committed[s]) / 1e6 for s in committed if s in heard)
    return {
        "cpu_us_per_note": cpu / n * 1e6,
        "send_us": send_cpu / n * 1e6,
        "heard": len(lat) / n,
        "p50_ms": statistics.median(lat),
        "p99_ms": lat[int(0.99 * (len(lat) - 1))],
    }


def idle_cpu(mode: str, seconds: float) -> float:
    """The listener's CPU a second with no commits at all."""
    with _listening(mode, seconds) as (_, ours):
        cpu, _ = ours.recv()
    return float(cpu) / seconds


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.notify_micro", description=__doc__
    )
    p.add_argument("--rate", type=float, default=200.0, help="commits a second")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=3, help="interleaved; best kept")
    args = p.parse_args(argv)
    modes = ["datagram", "poll1", "poll5", "poll20"]
    best: dict[str, dict[str, float]] = {}
    idle: dict[str, float] = {}
    for _ in range(args.rounds):
        for mode in modes:
            r = one_round(mode, args.rate, args.seconds)
            if mode not in best or r["cpu_us_per_note"] < best[mode]["cpu_us_per_note"]:
                best[mode] = r
            idle[mode] = min(idle.get(mode, 1e9), idle_cpu(mode, 1.0))
    print(
        f"{args.rate:.0f} commits/s for {args.seconds:.0f} s, best of {args.rounds}\n"
        f"{'mode':<10}{'listener CPU/note':>19}{'send CPU':>10}{'idle CPU':>10}"
        f"{'heard':>7}{'p50':>9}{'p99':>9}"
    )
    for mode in modes:
        r = best[mode]
        print(
            f"{mode:<10}{r['cpu_us_per_note']:>16.1f} µs{r['send_us']:>7.1f} µs"
            f"{idle[mode] * 100:>9.2f}%{r['heard']:>7.0%}"
            f"{r['p50_ms']:>6.2f} ms{r['p99_ms']:>6.2f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
