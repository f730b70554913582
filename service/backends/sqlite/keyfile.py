"""The embedded default's master key: DATA_DIR/master.key, beside the
store, created on first start when MASTER_KEY_FILE is not set."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from service.backends.sqlite.files import EVENTS_FILE, KEY_FILE
from service.config import ConfigError
from service.masterkey import MasterKey, read_master_key, write_new_master_key


def embedded_master_key(data_dir: Path) -> tuple[MasterKey, Path, bool]:
    """The embedded default's key, DATA_DIR/master.key. Created only for a
    store that records no master key yet: a store whose data keys are
    wrapped under a key whose file is missing (lost, or a backup restored
    without it) is a start-up error, and no file is written."""
    path = data_dir / KEY_FILE
    name = "the default key file"
    if path.exists():
        return _default(read_master_key(path, name), path, False)
    recorded = recorded_master_id(data_dir / EVENTS_FILE)
    if recorded is not None:
        raise ConfigError(
            f"{path} is missing, but the store in {data_dir} holds data keys "
            f"wrapped under master key {recorded}: restore that key's file "
            "from where you keep it apart from the backups (docs/runbook.md, "
            "Back up and restore), or set MASTER_KEY_FILE to it. A new key "
            "could not read any customer's data."
        )
    try:
        return _default(write_new_master_key(path, create_parents=True), path, True)
    except FileExistsError:  # another process of a fresh store made it first
        return _default(read_master_key(path, name), path, False)


def _default(key: MasterKey, path: Path, created: bool) -> tuple[MasterKey, Path, bool]:
    # Errors name the file actually used, not the unset setting.
    key.source = f"the default key file {path} (MASTER_KEY_FILE is unset)"
    return key, path, created


def recorded_master_id(db: Path) -> str | None:
    """The master key id an embedded store records, read without writing
    anything; None for no store or a store not yet started. (Plain sqlite3:
    the key must be known before the store is opened with it.)"""
    if not db.exists():
        return None
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        row = conn.execute(
            "SELECT value FROM key_meta WHERE name = 'master_id'"
        ).fetchone()
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return None
        raise ConfigError(f"cannot read the store {db}: {e}") from None
    finally:
        conn.close()
    return None if row is None else str(row[0])
