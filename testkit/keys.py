"""One master key file per test or bench run, for PostgreSQL-backed
services: they need MASTER_KEY_FILE (the embedded default makes its own
under DATA_DIR). The file is removed when the process that made it exits:
it is key material, and every run made a new one."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

from service.masterkey import MasterKey, read_master_key, write_new_master_key


@cache
def master_key_file() -> Path:
    where = Path(tempfile.mkdtemp(prefix="loyalty-test-key-"))
    # Services started with it are the run's children, stopped before it ends.
    atexit.register(shutil.rmtree, where, ignore_errors=True)
    path = where / "master.key"
    write_new_master_key(path)
    return path


def master_key() -> MasterKey:
    return read_master_key(master_key_file())
