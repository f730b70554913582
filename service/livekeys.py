"""Readers' cache of which data key is live for whom, one key epoch at a time.

Every erasure, in any process, draws a new key epoch in its transaction
(`Keyring.shred`), so a cache valid for one epoch lets a batch of reads ask
only for the epoch and the customers not seen yet, not all (most of a
replay's decryption). A read of the log learns the epoch from its scan's
own statement (`PositionIndex.scan`), in the rows' snapshot; other reads
look it up here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

# A customer's live key: (key id, the key's 32 bytes).
Entry = tuple[str, bytes]
CACHE_LIMIT = 100_000  # customers' keys kept unwrapped, per process


class Unread:
    """The key epoch was not read with the rows: the cache reads it."""


UNREAD = Unread()


class LiveKeys:
    """`meta` reads the store's epoch, `rows` the key rows of customers
    (key id, wrapped key, master key id first) and `material` unwraps one
    (customer id, key id, wrapped key, master key id)."""

    def __init__(
        self,
        meta: Callable[[str], str | None],
        rows: Callable[[list[str]], dict[str, Any]],
        material: Callable[[str, str, bytes | None, str | None], bytes],
    ) -> None:
        self._meta = meta
        self._rows = rows
        self._material = material
        self._live: dict[str, Entry] = {}
        self._epoch: str | None = None

    def known(
        self, wanted: Iterable[str], epoch: str | Unread | None
    ) -> dict[str, Entry]:
        """The cache, holding `wanted` where they have a live key.

        An epoch read with the rows, in their snapshot, may be older than
        the cache's: the cache is then remade from the keys as they are now,
        which can only hold fewer (an erasure since) than the snapshot saw.
        """
        if isinstance(epoch, Unread):
            epoch = self._meta("key_epoch")
        if epoch != self._epoch:
            # A new dict, not a clear: a reader still filling the old one
            # (the worker, a replay, another thread) cannot put a key it read
            # before the erasure into the cache of the epoch after it.
            self._live = {}
            self._epoch = epoch
        known = self._live
        missing = [cid for cid in wanted if cid not in known]
        if missing:
            if len(known) + len(missing) > CACHE_LIMIT:
                known.clear()
            for cid, row in self._rows(missing).items():
                if row[0] is not None:  # no negative entries: keys get made
                    known[cid] = (row[0], self._material(cid, row[0], row[1], row[2]))
        return known

    def forget(self, customer_id: str) -> None:
        """An erasure in this process: its epoch is new anyway."""
        self._live.pop(customer_id, None)
