"""`loyalty rebuild`: every read model again from the event store, with a
progress bar (tqdm) on stderr."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from tqdm import tqdm

from projections.rebuild import RebuildProgress
from service.bootstrap import build
from service.config import Settings

# Not a terminal (a pipe, a log file): a line of progress this often, seconds.
PIPE_INTERVAL = 10.0


class _Lines:
    """tqdm redraws its one line with a carriage return, which only a terminal
    understands; into a pipe or a file each redraw goes as a line of its own."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.encoding = getattr(stream, "encoding", "utf-8")
        self._last = ""

    def write(self, text: str) -> None:
        line = text.strip("\r\n ")
        if line and line != self._last:
            self.stream.write(line + "\n")
            self._last = line

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(stream: TextIO, total: int) -> tqdm[Any]:
    terminal = stream.isatty()
    return tqdm(
        total=total,
        file=stream if terminal else _Lines(stream),
        mininterval=0.1 if terminal else PIPE_INTERVAL,
        dynamic_ncols=terminal,
        ascii=not terminal,
        # The rate is the rebuild's own (see show), not tqdm's estimate.
        bar_format="[{bar:30}] {n_fmt}/{total_fmt} events{postfix}",
    )


def show(bar: tqdm[Any], p: RebuildProgress) -> None:
    """Move `bar` to `p`. The rate shown is the rebuild's: events applied
    over the time since it began, the same measure as the summary line.
    tqdm's own counts from the bar's first report (after a whole batch was
    already applied) and smooths recent updates, so it showed 133,060
    events/s for a rebuild that averaged 41,653."""
    total = max(p.target, p.done)  # the head may move on while it runs
    if bar.total != total:
        bar.total = total
    rate = p.events_per_second
    left = (total - p.done) / rate if rate > 0 and not p.finished else 0.0
    bar.set_postfix_str(f"{rate:,.0f}/s  {left:,.0f}s left", refresh=False)
    bar.update(p.done - bar.n)
    if p.finished:
        bar.refresh()


def _cmd_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from projections.rebuild import rebuild
    from service.rebuildreader import process_reader

    container = build(settings)
    bars: list[tqdm[Any]] = []  # made at the first report, which knows the total

    def on_progress(p: RebuildProgress) -> None:
        if not bars:
            bars.append(progress_bar(sys.stderr, max(p.target, p.done)))
        show(bars[0], p)

    try:
        # A second process reads and decrypts while this one folds and writes.
        with process_reader(container.backend, container.events) as source:
            done = rebuild(source, container.models, on_progress=on_progress)
        for bar in bars:
            bar.close()
        print(
            f"rebuilt generation {done.generation} up to position {done.done} "
            f"at {done.events_per_second:,.0f} events/s"
        )
        return 0
    finally:
        for bar in bars:
            bar.close()  # a second close does nothing
        container.close()


def add_parsers(sub: Any) -> None:
    r = sub.add_parser(
        "rebuild",
        help="rebuild every read model from the event store (online: readers "
        "keep the old models until the new ones are complete)",
    )
    r.set_defaults(func=_cmd_rebuild)
