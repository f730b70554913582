"""Rows written before encryption (v0 headers, bodies in clear): counted,
encrypted in place by `loyalty keys encrypt-existing`, or redacted by an
erasure. A one-off migration, kept apart from the event store's append and
read paths."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from service.keyring import Keyring, KeysChanged
from service.sealing import seal
from service.storedevents import REDACTED
from service.storedheader import StoredHeader, decode_header, encode_header

if TYPE_CHECKING:
    from service.eventstore import PositionIndex

# An erasure (or a key rotation) racing the migration makes it encrypt a
# batch again; this many times in a row means something is wrong.
ATTEMPTS = 5


class MigrationIncomplete(Exception):
    """Rows stayed in clear: their keys kept changing under the migration."""


def _in_clear(state: bytes) -> bool:
    return decode_header(state)[0].in_clear


class LegacyRows:
    def __init__(self, index: PositionIndex, keyring: Keyring) -> None:
        self.index = index
        self.keyring = keyring

    def count(self, batch: int = 5000) -> int:
        """How many rows are still in clear (a full scan)."""
        count, after = 0, 0
        while rows := self.index.scan(after, batch, (), None)[0]:
            after = rows[-1][0]
            count += sum(1 for _p, _t, state in rows if _in_clear(state))
        return count

    def redact(self, c: Any, positions: Sequence[int]) -> int:
        """In transaction `c`: rows at `positions` still in clear keep their
        header (rewritten as the current version) and lose their body."""
        rewrites = []
        for position, _topic, state in self.index.states_in(c, positions):
            header = decode_header(state)[0]
            if header.in_clear:
                rewrites.append(
                    (position, encode_header(header._replace(key_id=REDACTED)))
                )
        self.index.rewrite_states(c, rewrites)
        return len(rewrites)

    def encrypt_all(self, batch: int = 500) -> int:
        """Encrypt every row still in clear, in place, batch by batch; returns
        how many. Safe to run while the service runs and to run again. Raises
        MigrationIncomplete when a batch's keys keep changing under it."""
        done = 0
        after = 0
        while True:
            rows = self.index.scan(after, batch, (), None)[0]
            if not rows:
                return done
            after = rows[-1][0]
            legacy = []
            for position, _topic, state in rows:
                header, _aad, raw = decode_header(state)
                if header.in_clear:
                    legacy.append((position, header, raw))
            if not legacy:
                continue
            for _attempt in range(ATTEMPTS):
                try:
                    done += self._encrypt_rows(legacy)
                    break
                except KeysChanged:
                    continue
            else:
                raise MigrationIncomplete(
                    f"{len(legacy)} rows after position {legacy[0][0] - 1} stayed "
                    f"in clear: their data keys changed {ATTEMPTS} times while "
                    f"they were encrypted ({done} rows encrypted before); run "
                    "it again"
                )

    def _encrypt_rows(self, legacy: list[tuple[int, StoredHeader, bytes]]) -> int:
        newest: dict[str, datetime] = {}
        for _position, header, _raw in legacy:
            cid, created = header.customer_id, header.created_at
            if cid not in newest or created > newest[cid]:
                newest[cid] = created
        keys = self.keyring.for_append(newest)
        rewrites = []
        for position, header, raw in legacy:
            key = keys[header.customer_id]
            erased = key.erased_at is not None and header.created_at <= key.erased_at
            if key.aead is None or key.key_id is None or erased:
                new = encode_header(header._replace(key_id=REDACTED))
            else:
                sealed = encode_header(header._replace(key_id=key.key_id))
                new = sealed + seal(key.aead, raw, sealed)
            rewrites.append((position, new))
        used = {cid: k.key_id for cid, k in keys.items() if k.key_id is not None}
        with self.index.transaction(commit=True) as c:
            # Only rows still in clear: another run may have done some.
            current = {
                p: s for p, _t, s in self.index.states_in(c, [p for p, _ in rewrites])
            }
            todo = [(p, new) for p, new in rewrites if _in_clear(current[p])]
            self.index.rewrite_states(c, todo)
            self.keyring.verify(c, used)
        return len(todo)
