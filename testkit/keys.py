"""One master key file per test or bench run, for PostgreSQL-backed
services: they need MASTER_KEY_FILE (the embedded default makes its own
under DATA_DIR)."""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

from service.masterkey import MasterKey, read_master_key, write_new_master_key


@cache
def master_key_file() -> Path:
    path = Path(tempfile.mkdtemp(prefix="loyalty-test-key-")) / "master.key"
    write_new_master_key(path)
    return path


def master_key() -> MasterKey:
    return read_master_key(master_key_file())
