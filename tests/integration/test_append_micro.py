"""bench.append_micro runs its ladder, the rung with ids in key order
included, and that rung really stores its ids in the primary key's order."""

from __future__ import annotations

import re

import pytest

from bench import append_micro


def test_the_ladder_prints_every_step(capsys: pytest.CaptureFixture[str]) -> None:
    append_micro.main(["--ladder", "--rounds", "1", "--events", "64"])
    out = capsys.readouterr().out
    for step in ("append", *append_micro.STEPS):
        row = re.search(rf"^{step} +(\d+\.\d) \(", out, re.M)
        assert row is not None, out
        assert float(row.group(1)) > 0


def test_ids_in_key_order_are_stored_after_every_other_id() -> None:
    with append_micro.opened(None) as store:
        envs = append_micro.envelopes(96, 0)
        store.append(envs[:32])
        ladder = append_micro.Ladder(store)
        ladder.insert_committed_ids_in_key_order([envs[32:64], envs[64:]])
        recorder = store.recorder
        with recorder.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT originator_id FROM {recorder.events_table_name} ORDER BY rowid"
            )
            ids = [row[0] for row in c.fetchall()]
    assert len(ids) == 96
    ordered = ids[32:]
    assert ordered == sorted(ordered)
    assert min(ordered) > max(ids[:32])
