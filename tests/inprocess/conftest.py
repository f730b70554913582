"""Parts of the service built in this process, over real SQLite stores in a
temporary directory, through the composition root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from service.bootstrap import Container, build
from service.config import Settings
from testkit.signing import SECRET


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    built = build(Settings(webhook_secrets=(SECRET.encode(),), data_dir=tmp_path))
    yield built
    built.close()
