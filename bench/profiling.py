"""py-spy profiles of the server under load, and where the time goes.

Profiles are taken in a separate, unmeasured pass (py-spy pauses the process
to sample it). They sample the thread holding the GIL (`--gil`): with the
server on one core, that is where its Python time goes; each percentage is a
share of those samples. Time in C with the GIL released (SQLite's own work,
fsync, socket calls) is not in them; the summary states it as the gap between
the share of wall time the GIL was held and the process's CPU use.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.tools import pinned
from testkit.procs import cpu_seconds

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
_THREAD = re.compile(r"^thread \(0x[0-9A-Fa-f]+\)|^thread \(\d+\)")


RATE = 250  # samples per second


@dataclass
class Recording:
    raw: Path
    seconds: float
    cpu_share: float  # of one core, over the recording
    rate: int = RATE


def record(
    py_spy: str, pid: int, seconds: int | None, raw: Path, core: int, rate: int = RATE
) -> Recording:
    """Sample `pid` for `seconds` (None: until it exits) into `raw` (collapsed
    stacks); blocks."""
    argv = [
        py_spy, "record", "--pid", str(pid), "--rate", str(rate),
        "--format", "raw", "--function", "--threads", "--gil",
        "--output", str(raw),
    ]  # fmt: skip
    if seconds is not None:
        argv += ["--duration", str(seconds)]
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    cpu1 = cpu0
    with raw.with_suffix(".log").open("wb") as log:
        sampler = subprocess.Popen(pinned(argv, core), stdout=log, stderr=log)
        while sampler.poll() is None:
            with contextlib.suppress(OSError):  # the process may have exited
                cpu1 = cpu_seconds(pid)
            time.sleep(0.2)
    elapsed = time.monotonic() - t0
    return Recording(raw, elapsed, (cpu1 - cpu0) / elapsed, rate)


@dataclass
class Profile:
    samples: int
    threads: Counter[str]
    self_funcs: Counter[str]
    inclusive_funcs: Counter[str]
    self_areas: Counter[str]


def _thread_name(frame: str) -> str:
    name = frame.split(":", 1)[-1].strip() if ":" in frame else frame
    return re.sub(r"[_-]?\d+$", "", name) or "?"


def area(file: str) -> str:
    """What a source file belongs to, for the 'where the time goes' split."""
    parts = file.split("/")
    if parts[0] in ("service", "projections"):
        return "/".join(parts[:2]) if parts[0] == "projections" else file
    if parts[0] == "<frozen runpy>":
        return "runpy"
    return parts[0].removesuffix(".py")


def parse(raw: Path) -> Profile:
    prof = Profile(0, Counter(), Counter(), Counter(), Counter())
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = "?"
        if frames and _THREAD.match(frames[0]):
            thread = _thread_name(frames.pop(0))
        prof.samples += count
        prof.threads[thread] += count
        seen = set()
        for frame in frames:
            m = _FRAME.match(frame)
            key = f"{m['func']} ({m['file']})" if m else frame
            if key not in seen:
                seen.add(key)
                prof.inclusive_funcs[key] += count
        if frames:
            m = _FRAME.match(frames[-1])
            leaf = f"{m['func']} ({m['file']})" if m else frames[-1]
            prof.self_funcs[leaf] += count
            prof.self_areas[area(m["file"]) if m else "?"] += count
    return prof


def _pct(n: int, total: int) -> str:
    return f"{100 * n / max(total, 1):5.1f}%"


_PLUMBING = ("runpy", "asyncio/runners.py", "service/cli.py", "service/__main__.py")


def summarize(rec: Recording, title: str, top: int = 12) -> str:
    """Markdown: samples by thread, self time by area and by function, and the
    heaviest project functions including what they call."""
    p = parse(rec.raw)
    gil = p.samples / (rec.rate * rec.seconds)
    out = [
        f"### {title}",
        "",
        f"{p.samples} samples of the GIL holder over {rec.seconds:.0f} s: the GIL "
        f"was held {gil:.0%} of the time; the process used {rec.cpu_share:.0%} "
        "of its core.",
        "",
    ]
    out.append("By thread: " + ", ".join(
        f"{name} {_pct(n, p.samples).strip()}" for name, n in p.threads.most_common()
    ))  # fmt: skip
    out += ["", "Self time by area (the code running when sampled):", ""]
    out += [f"    {_pct(n, p.samples)}  {a}" for a, n in p.self_areas.most_common(top)]
    out += ["", "Self time by function:", ""]
    out += [f"    {_pct(n, p.samples)}  {f}" for f, n in p.self_funcs.most_common(top)]
    project = [
        (f, n)
        for f, n in p.inclusive_funcs.most_common()
        if ("(service/" in f or "(projections/" in f)
        and not any(x in f for x in _PLUMBING)
    ]
    out += ["", "Project functions, including their callees:", ""]
    out += [f"    {_pct(n, p.samples)}  {f}" for f, n in project[:top]]
    return "\n".join(out) + "\n"
