"""Fixtures of the contract tests: `backend` runs a test once per storage
backend, as the service would open it. A new backend is one more entry in
BACKENDS (and the environment that selects it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.backends import Backend, backend_for
from service.config import Settings
from testkit.keys import master_key_file

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    env = {
        "WEBHOOK_SECRET": "s",
        "DATA_DIR": str(tmp_path),
        "MASTER_KEY_FILE": str(master_key_file()),
    }
    if request.param == "postgres":
        env["DATABASE_URL"] = request.getfixturevalue("pg_url")
    return backend_for(Settings.from_environ(env))
