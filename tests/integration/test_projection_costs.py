"""bench.projection_costs runs, measures every variant and leaves the
writer as it found it (it swaps GenerationWriter.write per variant)."""

from __future__ import annotations

import re

import pytest

from bench import projection_costs
from projections.stores.rows import Batch
from projections.stores.writer import GenerationWriter


def test_it_prints_every_variant_and_restores_the_writer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    write = GenerationWriter.write
    projection_costs.main(["--rounds", "1", "--events", "64", "--customers", "50"])
    assert GenerationWriter.write is write
    out = capsys.readouterr().out
    for name in projection_costs.DROPPED:
        row = re.search(rf"^\| {re.escape(name)} \| (\d+\.\d) \|", out, re.M)
        assert row is not None, out
        assert float(row.group(1)) > 0


def test_dropping_empties_that_field_of_each_batch_written_inside(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    written: list[Batch] = []

    def record(self: object, batch: Batch, **kw: object) -> None:
        written.append(batch)

    monkeypatch.setattr(GenerationWriter, "write", record)
    ledger = [("c", 1, "e", 1, "{}")]
    with projection_costs.dropping("history"):
        GenerationWriter.write(None, Batch(1, history=[("c", 1)], ledger=ledger))  # type: ignore[arg-type]
    GenerationWriter.write(None, Batch(2, history=[("c", 2)]))  # type: ignore[arg-type]
    assert [b.history for b in written] == [[], [("c", 2)]]
    assert written[0].ledger == ledger
