"""A rotation that meets a busy store tries again (nothing of a failed try
is kept), and gives up with the store's error once `busy_for` is spent."""

from __future__ import annotations

from pathlib import Path

import pytest
from eventsourcing.persistence import OperationalError

from service.bootstrap import build
from service.config import Settings
from service.keyrecords import KeyRecords
from service.masterkey import write_new_master_key
from testkit.privacy import created


def test_a_busy_store_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = build(Settings.from_environ({"DATA_DIR": str(tmp_path)}, require_secret=False))
    try:
        c.events.append([created("a1", "ana"), created("b1", "bob")])
        real = KeyRecords._rotate_once
        tries: list[int] = []

        def busy_twice(self: KeyRecords, *args: object) -> int:
            tries.append(1)
            if len(tries) <= 2:
                raise OperationalError("database is locked")
            return real(self, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(KeyRecords, "_rotate_once", busy_twice)
        new = write_new_master_key(tmp_path / "new.key")
        keyring = c.events.keyring
        assert keyring.rotate_master(new, c.quarantine.reseal_master) == 2
        assert len(tries) == 3 and keyring.master.id == new.id
        assert keyring.meta("master_id") == new.id
    finally:
        c.close()


def test_a_store_busy_for_too_long_is_given_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = build(Settings.from_environ({"DATA_DIR": str(tmp_path)}, require_secret=False))
    try:
        c.events.append([created("a1", "ana")])
        old = c.events.keyring.master.id

        def always_busy(self: KeyRecords, *args: object) -> int:
            raise OperationalError("database is locked")

        monkeypatch.setattr(KeyRecords, "_rotate_once", always_busy)
        new = write_new_master_key(tmp_path / "new.key")
        with pytest.raises(OperationalError):
            c.events.keyring.rotate_master(new, busy_for=0.3)
        assert c.events.keyring.master.id == old
        assert c.events.keyring.meta("master_id") == old
    finally:
        c.close()
