"""A store written before the v2 header opens, reads, takes new events and
migrates; the pre-encryption migration says when it could not finish."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from projections.worker import ProjectionWorker
from service.bootstrap import Container, build
from service.config import Settings
from service.ingest import parse_envelope
from service.keyring import KeysChanged
from service.legacyrows import MigrationIncomplete
from service.storedheader import decode_header

# A SQLite store written by the version before v2 (v1 headers, one v0 row
# from before encryption, an erased customer), and what it read back.
FIXTURE = Path(__file__).parent.parent / "fixtures" / "v1-store"


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data)
    settings = Settings.from_environ(
        {"DATA_DIR": str(data), "MASTER_KEY_FILE": str(data / "master.key")},
        require_secret=False,
    )
    c = build(settings)
    yield c
    c.close()


def _seen(c: Container) -> list[list[Any]]:
    return [
        [
            e.position,
            e.id,
            e.type_name,
            e.customer_id,
            e.created_at.isoformat(),
            e.received_at.isoformat(),
            e.kind,
            e.raw.decode(),
        ]
        for e in c.events.read(0, 100)
    ]


def _versions(c: Container) -> list[int]:
    rows = c.events.index.scan(0, 100, (), None)[0]
    return [
        2 if s[:1] == b"\x02" else 0 if decode_header(s)[0].in_clear else 1
        for _p, _t, s in rows
    ]


def test_a_v1_store_reads_as_the_previous_version_read_it(container: Container) -> None:
    expected = json.loads((FIXTURE / "read-by-v1.json").read_text())
    assert _versions(container) == [1, 1, 1, 1, 1, 1, 0]
    assert _seen(container) == expected
    assert all(e.traceparent == "" for e in container.events.read(0, 100))


def test_new_events_are_v2_beside_the_old_ones(container: Container) -> None:
    body = {
        "id": "evt-new",
        "customerId": "cust-a",
        "createdAt": "2026-03-10T10:00:00Z",
        "properties": {"amount": 5, "reference": "r3"},
    }
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    env = parse_envelope(json.dumps(body).encode(), "Balance changed", traceparent=tp)
    [answer] = container.events.append([env])
    assert answer.status == "accepted"
    assert _versions(container)[-1] == 2
    new = container.events.read(answer.position - 1, 1)[0]
    assert (new.id, new.traceparent, new.raw) == ("evt-new", tp, env.raw)
    assert new.created_at == datetime.fromisoformat("2026-03-10T10:00:00+00:00")
    # The old customer's key reads both versions; an erasure redacts both.
    assert [
        e.kind for e in container.events.read(0, 100) if e.customer_id == "cust-a"
    ] == ["", "", "", ""]
    container.privacy().erase("cust-a")
    kinds = [e.kind for e in container.events.read(0, 100) if e.customer_id == "cust-a"]
    assert kinds == ["redacted"] * 4 + ["erasure"]


def test_the_v0_row_is_encrypted_as_v2(container: Container) -> None:
    before = _seen(container)
    assert container.events.legacy.count() == 1
    assert container.events.legacy.encrypt_all() == 1
    assert container.events.legacy.count() == 0
    assert _versions(container) == [1, 1, 1, 1, 1, 1, 2]
    assert _seen(container) == before
    assert container.events.legacy.encrypt_all() == 0


def test_the_migration_raises_when_keys_keep_changing(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def racing(c: Any, used: Any) -> None:
        calls.append(used)
        raise KeysChanged("an erasure raced the batch")

    monkeypatch.setattr(container.events.keyring, "verify", racing)
    with pytest.raises(MigrationIncomplete, match="stayed in clear"):
        container.events.legacy.encrypt_all()
    assert len(calls) == 5
    # Nothing was counted or rewritten: the row is still in clear.
    assert container.events.legacy.count() == 1


def test_erasing_a_customer_with_a_v0_row_redacts_it(container: Container) -> None:
    ProjectionWorker(container.events, container.models).run_once()
    container.privacy().erase("cust-c")
    [row] = [e for e in container.events.read(0, 100) if e.id == "evt-6"]
    assert row.kind == "redacted" and row.raw == b""
    assert _versions(container)[6] == 2
    assert container.events.legacy.count() == 0


def test_the_cli_says_so_and_fails_when_the_migration_is_incomplete(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from service.cli import parser

    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data)
    settings = Settings.from_environ(
        {"DATA_DIR": str(data), "MASTER_KEY_FILE": str(data / "master.key")},
        require_secret=False,
    )
    # The command itself, without main's logging set-up (which would bind
    # the log to this test's captured stderr for the tests after it).
    args = parser().parse_args(["keys", "encrypt-existing"])

    def racing(self: object, c: Any, used: Any) -> None:
        raise KeysChanged("an erasure raced the batch")

    with monkeypatch.context() as patched:
        patched.setattr("service.keyring.Keyring.verify", racing)
        assert args.func(args, settings) == 1
    err = capsys.readouterr().err
    assert "stayed in clear" in err and "run it again" in err
    assert args.func(args, settings) == 0
    assert "encrypted 1 stored event(s)" in capsys.readouterr().out
