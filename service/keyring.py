"""Per-customer data keys, wrapped under the master key, in their own table.

Every customer's personal data in the event log (event bodies, quarantined
requests) is encrypted with that customer's data key (AES-256-GCM). Erasing
a customer destroys the key: their stored bytes stay where they are but can
never be read again, on every backend and in every backup taken after the
master key that wrapped the key is retired (docs/privacy.md).

Tables, beside the events:
- data_keys: one row per customer id: the live key (wrapped), the master key
  that wrapped it, and when the customer was last erased. An erased
  customer's row keeps `erased_at` and loses the key; a later event
  created after the erasure gets a new key.
- key_meta: the id of the master key the store's data keys are wrapped
  under, so a wrong MASTER_KEY_FILE is a start-up error, not garbage.
- erasures: the audit trail (customer id, when, how many events); no
  personal data.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.keyrecords import (
    KeyRecords,
    KeysChanged,
    KeyTables,
    Read,
    Transaction,
    WrongMasterKey,
    own_cursor,
    wrap_aad,
)
from service.livekeys import CACHE_LIMIT, UNREAD, LiveKeys, Unread
from service.masterkey import MasterKey

__all__ = ["CustomerKey", "KeyTables", "Keyring", "KeysChanged", "WrongMasterKey"]
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class CustomerKey:
    """A customer's key for writing: `aead` is None while the customer has no
    live key (erased, and nothing newer than `erased_at` arrived)."""

    key_id: str | None
    aead: AESGCM | None
    erased_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewKey:
    """A data key made for a batch, stored in the batch's transaction."""

    customer_id: str
    key_id: str
    wrapped: bytes
    replaces: bool  # the customer's row exists (erased, keyless)
    erased_at: datetime | None = None  # of that row
    erased_text: str | None = None  # as stored: the row must still say it


# A data_keys row: key id, wrapped key, master key id, erased at (parsed,
# and as stored).
_KeyRow = tuple[str | None, bytes | None, str | None, datetime | None, str | None]


def _when(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class Keyring(KeyRecords):
    """Per-customer data keys: made on first use, unwrapped for reading,
    destroyed by an erasure (`shred`)."""

    def __init__(
        self,
        master: MasterKey,
        transaction: Transaction,
        tables: KeyTables,
        read: Read | None = None,
    ) -> None:
        super().__init__(master, transaction, tables, read)
        # Unwrapped keys by key id (a key id names one key forever, so the
        # cache cannot serve a wrong key). The 32 bytes, not AESGCM objects:
        # one of those holds an OpenSSL context of ~2.4 KB (240 MB for
        # 100,000 customers), and making one from the bytes takes ~1 us.
        self._materials: dict[str, bytes] = {}
        # Readers' view of which key is live for whom, one key epoch at a time.
        self._readers = LiveKeys(self.meta, self._rows, self._material)
        # Writers' key rows, as last read or written here: read once per
        # customer, not per batch. A stale one (another process erased) costs
        # a retry, never a wrong key: `verify` and `store_new` check the rows
        # in the batch's transaction, and a failed batch drops its customers'.
        self._writing: dict[str, _KeyRow] = {}

    # -- keys for writing --------------------------------------------------------

    def for_append(self, newest: Mapping[str, datetime]) -> dict[str, CustomerKey]:
        """Each customer's key for writing something whose newest part of
        theirs was created at `newest[customer]`: their live key, a new one
        (stored now, in its own transaction) where they have none or were
        erased before that, or none (it all predates their erasure)."""
        keys, new = self.for_batch(newest, fresh=True)
        if new:
            with self._transaction(commit=True) as c:
                self.store_new(c, new)
            keys, new = self.for_batch(newest, fresh=True)  # whoever's key won
        return keys

    def for_batch(
        self, newest: Mapping[str, datetime], *, fresh: bool = False
    ) -> tuple[dict[str, CustomerKey], list[NewKey]]:
        """As `for_append`, but new keys are only made, not stored: the
        caller stores them with `store_new` in the transaction that uses them
        and then calls `verify` (one commit per batch, not two), then
        `written` if it committed or `forget_writers` if it failed. Unless
        `fresh`, rows come from the writers' cache where it has them."""
        rows = self._rows(newest) if fresh else self._writer_rows(newest)
        keys: dict[str, CustomerKey] = {}
        new: list[NewKey] = []
        for cid, when in newest.items():
            row = rows.get(cid)
            if row is None or (row[0] is None and (row[3] is None or when > row[3])):
                made = uuid.uuid4().hex
                material = AESGCM.generate_key(bit_length=256)
                wrapped = self.master.seal(material, wrap_aad(cid, made))
                aead = AESGCM(material)
                self._remember(made, material)
                erased, text = (None, None) if row is None else row[3:]
                new.append(NewKey(cid, made, wrapped, row is not None, erased, text))
                keys[cid] = CustomerKey(made, aead, erased)
                continue
            key_id, wrapped_key, master_id, erased_at, _text = row
            aead_or_none = (
                None
                if key_id is None
                else self._unwrap(cid, key_id, wrapped_key, master_id)
            )
            keys[cid] = CustomerKey(key_id, aead_or_none, erased_at)
        return keys, new

    def _writer_rows(self, customer_ids: Iterable[str]) -> dict[str, _KeyRow]:
        cache, wanted = self._writing, list(customer_ids)
        missing = [cid for cid in wanted if cid not in cache]
        if missing:
            if len(cache) + len(missing) > CACHE_LIMIT:
                cache.clear()
            cache.update(self._rows(missing))
        return {cid: row for cid in wanted if (row := cache.get(cid)) is not None}

    def written(self, new: Sequence[NewKey]) -> None:
        """The batch that stored these keys committed: they are live."""
        for k in new:
            row = (k.key_id, k.wrapped, self.master.id, k.erased_at, k.erased_text)
            self._writing[k.customer_id] = row

    def forget_writers(self, customer_ids: Iterable[str]) -> None:
        """A batch with these customers failed: read their keys afresh."""
        for cid in customer_ids:
            self._writing.pop(cid, None)

    def store_new(self, c: Any, new: Sequence[NewKey]) -> None:
        """Store keys made by `for_batch`, in transaction `c`. Where another
        writer stored a customer's key first, theirs stays; `verify` then
        tells the caller to encrypt again."""
        if not new:
            return
        p = self.t.p
        # In customer order: two writers inserting overlapping sets of new
        # customers then take their row locks in the same order, and wait
        # for each other instead of deadlocking (PostgreSQL).
        new = sorted(new, key=lambda k: k.customer_id)
        fresh = [
            (k.customer_id, k.key_id, k.wrapped, self.master.id)
            for k in new
            if not k.replaces
        ]
        # A cursor of their own: nothing fetches these results (own_cursor).
        with own_cursor(c) as w:
            if fresh:
                w.executemany(
                    f"INSERT INTO {self.t.data_keys} (customer_id, key_id, wrapped, "
                    f"master_id) VALUES ({p}, {p}, {p}, {p}) "
                    "ON CONFLICT (customer_id) DO NOTHING",
                    fresh,
                )
            for k in new:
                if k.replaces:
                    # Erased before: a new key, if still keyless and not erased
                    # again since the row was read (the event may predate that).
                    same = "IS NULL" if k.erased_text is None else f"= {p}"
                    w.execute(
                        f"UPDATE {self.t.data_keys} SET key_id = {p}, wrapped = {p}, "
                        f"master_id = {p} WHERE customer_id = {p} AND key_id IS NULL "
                        f"AND erased_at {same}",
                        (k.key_id, k.wrapped, self.master.id, k.customer_id)
                        + (() if k.erased_text is None else (k.erased_text,)),
                    )
        # After the writes (they hold the lock): a rotation that committed
        # meanwhile would leave these keys wrapped under a retired key.
        self.require_master(
            c,
            self.t.for_share,
            "now: restart with the MASTER_KEY_FILE it was rotated to",
        )

    def _rows(
        self, customer_ids: Iterable[str], cursor: Any = None
    ) -> dict[str, _KeyRow]:
        found = {}
        ids = list(customer_ids)
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            sql = (
                "SELECT customer_id, key_id, wrapped, master_id, erased_at "
                f"FROM {self.t.data_keys} WHERE customer_id IN "
                f"({','.join([self.t.p] * len(chunk))})"
            )
            with self._read() if cursor is None else nullcontext(cursor) as c:
                c.execute(sql, chunk)
                fetched = c.fetchall()
            for r in fetched:
                wrapped = None if r["wrapped"] is None else bytes(r["wrapped"])
                found[r["customer_id"]] = (
                    r["key_id"],
                    wrapped,
                    r["master_id"],
                    _when(r["erased_at"]),
                    r["erased_at"],
                )
        return found

    def _unwrap(
        self, cid: str, key_id: str, wrapped: bytes | None, master_id: str | None
    ) -> AESGCM:
        return AESGCM(self._material(cid, key_id, wrapped, master_id))

    def _material(
        self, cid: str, key_id: str, wrapped: bytes | None, master_id: str | None
    ) -> bytes:
        material = self._materials.get(key_id)
        if material is not None:
            return material
        if master_id != self.master.id or wrapped is None:
            raise WrongMasterKey(
                f"a data key is wrapped under master key {master_id}, not the "
                f"configured {self.master.id}: restart with the current "
                "MASTER_KEY_FILE"
            )
        try:
            material = self.master.open(wrapped, wrap_aad(cid, key_id))
        except InvalidTag:
            raise WrongMasterKey(
                "a data key does not unwrap under the configured master key"
            ) from None
        self._remember(key_id, material)
        return material

    def _remember(self, key_id: str, material: bytes) -> None:
        if len(self._materials) >= CACHE_LIMIT:
            self._materials.clear()
        self._materials[key_id] = material

    def verify(self, cursor: Any, used: Mapping[str, str]) -> None:
        """Inside the transaction that stores a batch: raise KeysChanged if a
        key the batch was encrypted with is no longer its customer's live key.
        On PostgreSQL the rows are also locked until commit, so an erasure
        waits for the batch instead of racing it."""
        if not used:
            return
        ids = list(used)
        p = self.t.p
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            marks = ",".join([p] * len(chunk))
            if self.t.for_share:
                cursor.execute(
                    f"SELECT customer_id, key_id FROM {self.t.data_keys} "
                    f"WHERE customer_id IN ({marks}){self.t.for_share}",
                    chunk,
                )
                live = {r["customer_id"]: r["key_id"] for r in cursor.fetchall()}
                same = all(live.get(cid) == used[cid] for cid in chunk)
            else:
                # One row back, not one a customer (a driver step, a row
                # object and a dict entry each, in every batch's commit).
                # A customer has one row, so all match when all are counted.
                pairs = ",".join([f"({p},{p})"] * len(chunk))
                cursor.execute(
                    f"SELECT count(*) AS n FROM {self.t.data_keys} "
                    f"WHERE customer_id IN ({marks}) "
                    f"AND (customer_id, key_id) IN (VALUES {pairs})",
                    [*chunk, *(v for cid in chunk for v in (cid, used[cid]))],
                )
                same = cursor.fetchone()["n"] == len(chunk)
            if not same:
                raise KeysChanged("a data key changed while its batch was stored")

    # -- keys for reading --------------------------------------------------------

    def live(
        self, customer_ids: Iterable[str], epoch: str | Unread | None = UNREAD
    ) -> dict[str, tuple[str, AESGCM]]:
        """Each customer's live key as (key id, key); none for a customer
        erased since (and a row encrypted under another key id than the live
        one is unreadable: its key is gone). `epoch`: the key epoch as read
        with the rows to open (`PositionIndex.scan`), else read now."""
        wanted = list(customer_ids)
        known = self._readers.known(wanted, epoch)
        return {
            cid: (entry[0], AESGCM(entry[1]))
            for cid in wanted
            if (entry := known.get(cid)) is not None
        }

    def live_ids(
        self, customer_ids: Iterable[str], epoch: str | Unread | None = UNREAD
    ) -> dict[str, str]:
        """`live`'s key ids alone, no key made (~1 us each): the hand-off's."""
        known = self._readers.known(wanted := list(customer_ids), epoch)
        return {c: entry[0] for c in wanted if (entry := known.get(c)) is not None}

    # -- erasure -------------------------------------------------------------------

    def shred(self, c: Any, customer_id: str, erased_at: datetime, events: int) -> bool:
        """Destroy the customer's key and record the erasure, in transaction
        `c`. True if they had a live key (something was erased)."""
        p = self.t.p
        c.execute(
            f"SELECT key_id FROM {self.t.data_keys} WHERE customer_id = {p}",
            (customer_id,),
        )
        row = c.fetchone()
        old_key = None if row is None else row["key_id"]
        had_key = old_key is not None
        stamp = erased_at.astimezone(UTC).isoformat()
        if row is None:
            # Nothing held yet, but late deliveries of their past events must
            # still be refused their personal data.
            c.execute(
                f"INSERT INTO {self.t.data_keys} (customer_id, erased_at) "
                f"VALUES ({p}, {p})",
                (customer_id, stamp),
            )
        else:
            c.execute(
                f"UPDATE {self.t.data_keys} SET key_id = NULL, wrapped = NULL, "
                f"master_id = NULL, erased_at = {p} WHERE customer_id = {p}",
                (stamp, customer_id),
            )
        c.execute(
            f"INSERT INTO {self.t.erasures} (customer_id, erased_at, events) "
            f"VALUES ({p}, {p}, {p})",
            (customer_id, stamp, events),
        )
        # Every reader's cache of live keys is stale now (see `live`).
        self.set_meta(c, "key_epoch", uuid.uuid4().hex)
        if old_key is not None:
            self._materials.pop(old_key, None)
        self._readers.forget(customer_id)
        self._writing.pop(customer_id, None)
        return had_key

    def forget_cached(self, key_ids: Iterable[str]) -> None:
        for key_id in key_ids:
            self._materials.pop(key_id, None)

    def seal_without_customer(self, plaintext: bytes, aad: bytes) -> bytes:
        """For a quarantined request whose customer cannot be read."""
        return self.master.seal(plaintext, aad)

    def open_without_customer(self, sealed: bytes, aad: bytes) -> bytes | None:
        try:
            return self.master.open(sealed, aad)
        except InvalidTag:
            return None
