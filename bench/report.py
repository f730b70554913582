"""The results table: one row per figure, its same-run baseline and target."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class Row:
    name: str
    figure: float | None
    unit: str
    baseline: float | None = None  # the bare framework, same run
    ratio: float | None = None
    target: str = ""
    passed: bool | None = None  # None: informational, no target
    note: str = ""

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "info"}[self.passed]


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".rstrip()


HEADERS = ("benchmark", "figure", "baseline (same run)", "ratio", "target", "result")


def table(rows: list[Row]) -> str:
    """A Markdown table (readable in a terminal too)."""
    cells = [HEADERS] + [
        (
            r.name,
            _num(r.figure, r.unit),
            _num(r.baseline, r.unit),
            "-" if r.ratio is None else f"{r.ratio:.2f}x",
            r.target or "-",
            r.verdict,
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADERS))]

    def line(c: tuple[str, ...]) -> str:
        return (
            "| " + " | ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)) + " |"
        )

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(c) for c in cells[1:])])


def notes(rows: list[Row]) -> str:
    return "\n".join(f"- {r.name}: {r.note}" for r in rows if r.note)


def write_json(path: Path, rows: list[Row], meta: dict[str, Any]) -> None:
    path.write_text(
        json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=2)
    )
