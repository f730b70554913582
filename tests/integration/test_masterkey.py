"""MASTER_KEY_FILE: a clear start-up error for every way the file can be
wrong, never a silent new key; the embedded default creates one once."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from service.backends import backend_for
from service.config import ConfigError, Settings
from service.masterkey import MasterKey


def resolve_master_key(settings: Settings) -> tuple[MasterKey, Path, bool]:
    """The key the configured backend opens its store with."""
    return backend_for(settings).master_key()


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_environ(
        {"DATA_DIR": str(tmp_path / "data"), **env}, require_secret=False
    )


def test_the_embedded_default_creates_a_key_once_owner_only(tmp_path: Path) -> None:
    key, path, created = resolve_master_key(settings(tmp_path))
    assert created and path == tmp_path / "data" / "master.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(base64.b64decode(path.read_bytes().strip())) == 32
    again, _, created_again = resolve_master_key(settings(tmp_path))
    assert not created_again and again.id == key.id


def test_postgres_requires_a_key_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MASTER_KEY_FILE is missing"):
        resolve_master_key(
            settings(tmp_path, DATABASE_URL="postgresql://u@127.0.0.1:5432/db")
        )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        (b"not base64 at all!!\n", "is not base64"),
        (base64.b64encode(b"short") + b"\n", "holds 5 bytes, not 32"),
        (b"", "holds 0 bytes, not 32"),
    ],
)
def test_a_bad_key_file_is_a_clear_error(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "master.key"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        resolve_master_key(settings(tmp_path, MASTER_KEY_FILE=str(path)))
    assert not (tmp_path / "data" / "master.key").exists()  # no silent new key


def test_an_unreadable_key_file_is_a_clear_error(tmp_path: Path) -> None:
    # A directory: unreadable as a file even for root.
    with pytest.raises(ConfigError, match="cannot be read"):
        resolve_master_key(settings(tmp_path, MASTER_KEY_FILE=str(tmp_path)))


def test_the_key_openssl_prints_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_text(base64.b64encode(bytes(range(32))).decode() + "\n")
    key, _, created = resolve_master_key(settings(tmp_path, MASTER_KEY_FILE=str(path)))
    assert not created and len(key.id) == 16
