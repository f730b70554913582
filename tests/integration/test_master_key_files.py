"""The master key's file: the embedded default compares with the store
before it writes anything, a file others can write is refused, one others
can read is warned about, and a new file's directory is synced."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from service import masterkey
from service.bootstrap import build
from service.config import ConfigError, Settings
from service.keyring import WrongMasterKey
from service.masterkey import read_master_key, write_new_master_key


def open_store(data_dir: Path, **env: str) -> None:
    settings = Settings.from_environ(
        {"DATA_DIR": str(data_dir), **env}, require_secret=False
    )
    build(settings).close()


def test_a_missing_default_key_of_an_existing_store_creates_no_file(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    open_store(data)
    key = data / "master.key"
    key.unlink()
    with pytest.raises(ConfigError, match=r"master\.key is missing.*restore"):
        open_store(data)
    assert not key.exists()
    assert sorted(p.name for p in data.iterdir() if "master" in p.name) == []


def test_a_wrong_default_key_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    data = tmp_path / "data"
    open_store(data)
    key = data / "master.key"
    key.unlink()
    write_new_master_key(key)
    content = key.read_bytes()
    with pytest.raises(WrongMasterKey):
        open_store(data)
    assert key.read_bytes() == content


def test_a_new_store_gets_its_default_key_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    open_store(data)
    first = read_master_key(data / "master.key").id
    open_store(data)
    assert read_master_key(data / "master.key").id == first


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602])
def test_a_key_file_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "k.key"
    write_new_master_key(path)
    path.chmod(mode)
    with pytest.raises(ConfigError, match="can be written by others"):
        read_master_key(path)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o444])
def test_a_key_file_others_can_read_is_warned_about(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "k.key"
    write_new_master_key(path)
    path.chmod(mode)
    with capture_logs() as logs:
        read_master_key(path)
    (warning,) = [e for e in logs if e["log_level"] == "warning"]
    assert "read by others" in warning["event"] and warning["path"] == str(path)
    path.chmod(0o600)
    with capture_logs() as logs:
        read_master_key(path)
    assert logs == []


def test_a_new_key_file_and_its_directory_are_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real: Callable[[int], None] = os.fsync

    def fsync(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(masterkey.os, "fsync", fsync)
    (tmp_path / "keys").mkdir()  # an operator's directory is never made for them
    path = tmp_path / "keys" / "new.key"
    write_new_master_key(path)
    assert synced == ["file", "dir"]
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_new_key_file_is_never_written_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    link = tmp_path / "new.key"
    link.symlink_to(target)
    with pytest.raises(FileExistsError):
        write_new_master_key(link)
    assert not target.exists()
