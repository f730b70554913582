"""Backends for tests of a rebuild's reader process (service/rebuildreader.py):
importable by name, as a spawned process needs them."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

from service.backends.base import Backend, OpenedEvents


@dataclass
class _DyingIndex:
    index: Any
    scans: int

    def scan(self, *args: Any) -> Any:
        if self.scans == 0:
            os._exit(3)  # as a crash or the OOM killer would: no goodbye
        self.scans -= 1
        return self.index.scan(*args)


@dataclass
class _DyingStore:
    index: _DyingIndex
    keyring: Any


class DyingBackend:
    """`backend`, but the reader process it opens dies without a word after
    `scans` reads of the log."""

    def __init__(self, backend: Backend, scans: int) -> None:
        self.backend = backend
        self.scans = scans

    def master_key(self) -> Any:
        return self.backend.master_key()

    def open_events(self, master: Any) -> OpenedEvents:
        opened = self.backend.open_events(master)
        store = _DyingStore(
            _DyingIndex(opened.events.index, self.scans), opened.events.keyring
        )
        return replace(opened, events=store)  # type: ignore[arg-type]


class FailingBackend(DyingBackend):
    """`backend`, but the reader process cannot open the store."""

    def open_events(self, master: Any) -> OpenedEvents:
        raise OSError("the store is not there")
