"""`loyalty export --out FILE`: the document streams into a new file only its
owner can read, never through a symlink or over an existing file, in
memory that does not grow with the customer's number of events."""

from __future__ import annotations

import argparse
import json
import tracemalloc
from pathlib import Path

import pytest

from projections.worker import ProjectionWorker
from service.bootstrap import build
from service.cli.privacy import _cmd_export
from service.config import Settings
from testkit.privacy import ANA, body, created, points

HEADERS = {"x-jericommerce-event-type": "Balance changed"}


def seeded(tmp_path: Path, events: int) -> Settings:
    settings = Settings.from_environ(
        {"DATA_DIR": str(tmp_path / "data")}, require_secret=False
    )
    c = build(settings)
    try:
        c.events.append([created("a0", "ana"), created("b0", "bob")])
        for start in range(1, events, 1000):
            stop = min(start + 1000, events)
            c.events.append([points(f"a{i}", "ana", i) for i in range(start, stop)])
        c.quarantine.add("createdAt is not ISO-8601", HEADERS, body("q", "ana", "x"))
        ProjectionWorker(c.events, c.models, batch_size=2000).run_once()
    finally:
        c.close()
    return settings


def export(settings: Settings, out: Path, customer: str = "ana") -> int:
    return _cmd_export(argparse.Namespace(customer_id=customer, out=str(out)), settings)


def test_the_file_is_new_owner_only_and_holds_everything(tmp_path: Path) -> None:
    settings = seeded(tmp_path, 300)
    out = tmp_path / "ana.json"
    assert export(settings, out) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    document = json.loads(out.read_text())
    assert document["customer_id"] == "ana"
    assert document["read_model"]["email"] == ANA["email"]
    assert [e["id"] for e in document["events"]] == [f"a{i}" for i in range(300)]
    assert document["events"][0]["body"]["properties"]["lastName"] == ANA["lastName"]
    (quarantined,) = document["quarantined_requests"]
    assert quarantined["reason"] == "createdAt is not ISO-8601"
    assert json.loads(quarantined["body"])["id"] == "q"


def test_an_empty_history_is_still_one_json_document(tmp_path: Path) -> None:
    settings = seeded(tmp_path, 1)
    out = tmp_path / "bob.json"
    assert export(settings, out, "bob") == 0
    document = json.loads(out.read_text())
    assert [e["id"] for e in document["events"]] == ["b0"]
    assert document["quarantined_requests"] == []


@pytest.mark.parametrize("target_exists", [False, True])
def test_a_symlink_is_never_followed(tmp_path: Path, target_exists: bool) -> None:
    settings = seeded(tmp_path, 5)
    target = tmp_path / "someone-elses"
    if target_exists:
        target.write_text("theirs")
    link = tmp_path / "ana.json"
    link.symlink_to(target)
    assert export(settings, link) == 1
    assert link.is_symlink()
    if target_exists:
        assert target.read_text() == "theirs"
    else:
        assert not target.exists()


def test_an_existing_file_is_not_overwritten(tmp_path: Path) -> None:
    settings = seeded(tmp_path, 5)
    out = tmp_path / "ana.json"
    out.write_text("keep me")
    out.chmod(0o644)
    assert export(settings, out) == 1
    assert out.read_text() == "keep me"


def peak_bytes(settings: Settings, out: Path) -> int:
    tracemalloc.start()
    try:
        assert export(settings, out) == 0
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_number_of_events(tmp_path: Path) -> None:
    small = seeded(tmp_path / "small", 600)
    large = seeded(tmp_path / "large", 6000)
    small_peak = peak_bytes(small, tmp_path / "small.json")
    large_peak = peak_bytes(large, tmp_path / "large.json")
    assert len(json.loads((tmp_path / "large.json").read_text())["events"]) == 6000
    # Ten times the events: the same pages, so about the same peak (the
    # whole document in memory made it grow tenfold).
    assert large_peak < 2 * small_peak, (small_peak, large_peak)
