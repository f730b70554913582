"""The key tables' schema, and what they record about the master key: its
id (checked at start-up, replaced by a rotation, which re-wraps every data
key) and how far events from before encryption go; and the look-ups in the
erasure audit trail that let concurrent erasures of one customer settle
once. `Keyring` (keyring.py) adds the customers' data keys on top."""

from __future__ import annotations

import itertools
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import psycopg
from eventsourcing.persistence import OperationalError

from projections.stores.db import Dialect
from service import logs
from service.config import ConfigError
from service.masterkey import MasterKey

log = logs.get(__name__)
# A lock not granted in time (SQLite's "database is locked", PostgreSQL's
# lock timeout) or a deadlock PostgreSQL broke: worth another try.
BUSY_ERRORS = (OperationalError, sqlite3.OperationalError, psycopg.OperationalError)

Transaction = Callable[..., AbstractContextManager[Any]]
Read = Callable[[], AbstractContextManager[Any]]  # a cursor, for one statement


class KeysChanged(Exception):
    """A data key used to encrypt a batch was destroyed or replaced before the
    batch committed (an erasure raced it); encrypt again."""


class WrongMasterKey(ConfigError):
    """The configured master key is not the one the data keys are wrapped under."""


@dataclass(frozen=True)
class KeyTables:
    """The key tables' names and locks, in a backend's spelling (`of`).
    Their schema is the backend's (service/backends/*/schema.py)."""

    p: str  # parameter marker
    data_keys: str
    key_meta: str
    erasures: str
    for_share: str  # row lock that blocks a concurrent erasure ("" on SQLite)
    # First statement of a rotation: takes the lock every writer of keys
    # needs, so what the rotation reads cannot change before it commits.
    write_lock: str

    @classmethod
    def of(cls, dialect: Dialect, write_lock: str) -> KeyTables:
        return cls(
            p=dialect.p,
            data_keys=dialect.name("data_keys"),
            key_meta=dialect.name("key_meta"),
            erasures=dialect.name("erasures"),
            for_share=dialect.for_share,
            write_lock=write_lock,
        )


@contextmanager
def own_cursor(c: Any) -> Iterator[Any]:
    """A cursor of its own, in `c`'s transaction, for statements whose
    results nobody fetches. On PostgreSQL the library's insert transaction
    runs in psycopg's pipeline mode, where a result that arrives late is
    set on the cursor that sent it as if it were that cursor's latest: a
    later `execute` + `fetchone` on the same cursor could then read an
    INSERT's status instead of its own rows (the library sends its own
    batch through a second cursor for the same reason). SQLite has no
    pipeline: `c` itself."""
    if isinstance(c, psycopg.Cursor):
        with c.connection.cursor() as own:
            yield own
    else:
        yield c


def wrap_aad(customer_id: str, key_id: str) -> bytes:
    return f"data-key\x00{customer_id}\x00{key_id}".encode()


class KeyRecords:
    """The key tables, and the master key they are wrapped under."""

    def __init__(
        self,
        master: MasterKey,
        transaction: Transaction,
        tables: KeyTables,
        read: Read | None = None,
    ) -> None:
        self.master = master
        self._transaction = transaction
        self.t = tables
        # A cursor for reads of one statement: on PostgreSQL one outside a
        # transaction block, since BEGIN and ROLLBACK are two more round trips
        # and psycopg drops the connection's prepared statements on ROLLBACK.
        self._read = read or partial(transaction, commit=False)

    # -- schema and the master key ---------------------------------------------

    def meta(self, name: str) -> str | None:
        with self._read() as c:
            c.execute(
                f"SELECT value FROM {self.t.key_meta} WHERE name = {self.t.p}", (name,)
            )
            row = c.fetchone()
        return None if row is None else str(row["value"])

    def set_meta(self, c: Any, name: str, value: str) -> None:
        p = self.t.p
        c.execute(
            f"INSERT INTO {self.t.key_meta} (name, value) VALUES ({p}, {p}) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    def check_master(self) -> None:
        """Record the master key's id on a new store; refuse a different key
        on an existing one."""
        expected = self.meta("master_id")
        if expected is None:
            with self._transaction(commit=True) as c:
                c.execute(
                    f"INSERT INTO {self.t.key_meta} (name, value) "
                    f"VALUES ('master_id', {self.t.p}) ON CONFLICT (name) DO NOTHING",
                    (self.master.id,),
                )
            expected = self.meta("master_id")
        if expected != self.master.id:
            raise WrongMasterKey(
                f"{self.master.source} holds master key {self.master.id}, but this "
                f"store's data keys are wrapped under {expected}: configure the "
                "file that key was read from (or, after `loyalty keys "
                "rotate-master`, the new one)"
            )

    def require_master(self, c: Any, lock: str, hint: str) -> None:
        """In transaction `c`: raise WrongMasterKey unless the store's data
        keys are wrapped under this process's master key; `lock` is the row
        lock to take on the record, `hint` ends the message."""
        c.execute(f"SELECT value FROM {self.t.key_meta} WHERE name = 'master_id'{lock}")
        row = c.fetchone()
        if row is not None and row["value"] != self.master.id:
            raise WrongMasterKey(
                f"the store's data keys are wrapped under {row['value']}, {hint}"
            )

    def record_legacy_head(self, head: int) -> None:
        """On the first start of a store that holds events from before
        encryption, remember how far they go (`legacy_through`), so start-up
        can say that `loyalty keys encrypt-existing` is due."""
        if self.meta("legacy_through") is None:
            with self._transaction(commit=True) as c:
                c.execute(
                    f"INSERT INTO {self.t.key_meta} (name, value) "
                    f"VALUES ('legacy_through', {self.t.p}) "
                    "ON CONFLICT (name) DO NOTHING",
                    (str(head),),
                )

    def legacy_through(self) -> int:
        return int(self.meta("legacy_through") or 0)

    def clear_legacy(self) -> None:
        with self._transaction(commit=True) as c:
            self.set_meta(c, "legacy_through", "0")

    def probe_space(self, size: int = 256 * 1024) -> None:
        """Commit a write of `size` bytes (made and removed in the same
        transaction): it fails as an append would while the disk is full."""
        p = self.t.p
        with self._transaction(commit=True) as c:
            c.execute(
                f"INSERT INTO {self.t.key_meta} (name, value) "
                f"VALUES ('space-probe', {p}) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (os.urandom(size // 2).hex(),),
            )
            c.execute(f"DELETE FROM {self.t.key_meta} WHERE name = 'space-probe'")

    # -- the erasure audit trail ----------------------------------------------------

    def last_erasure(self, customer_id: str) -> int:
        """The id of the customer's latest audit record, 0 if none."""
        with self._transaction(commit=False) as c:
            c.execute(
                f"SELECT MAX(id) AS last FROM {self.t.erasures} "
                f"WHERE customer_id = {self.t.p}",
                (customer_id,),
            )
            row = c.fetchone()
        return int(row["last"] or 0)

    def lock_customer(self, c: Any, customer_id: str) -> None:
        """In transaction `c`: hold the customer's key row (made keyless if
        missing) until commit, so erasures of one customer take turns
        (SQLite's transactions already do: they hold the write lock)."""
        p = self.t.p
        c.execute(
            f"INSERT INTO {self.t.data_keys} (customer_id) VALUES ({p}) "
            "ON CONFLICT (customer_id) DO NOTHING",
            (customer_id,),
        )
        c.execute(
            f"SELECT customer_id FROM {self.t.data_keys} WHERE customer_id = {p}"
            + self.t.for_share.replace("SHARE", "UPDATE"),
            (customer_id,),
        )
        c.fetchall()

    def erased_since(self, c: Any, customer_id: str, seen: int) -> str | None:
        """In transaction `c`, after `lock_customer`: when the customer was
        erased, if an erasure recorded after audit record `seen` left them
        keyless (nothing arrived since for another erasure to remove)."""
        p = self.t.p
        c.execute(
            f"SELECT k.erased_at AS erased_at FROM {self.t.data_keys} k "
            f"WHERE k.customer_id = {p} AND k.key_id IS NULL AND EXISTS ("
            f"SELECT 1 FROM {self.t.erasures} e WHERE e.customer_id = {p} "
            f"AND e.id > {p})",
            (customer_id, customer_id, seen),
        )
        row = c.fetchone()
        return None if row is None else str(row["erased_at"])

    # -- master key rotation -------------------------------------------------------

    def rotate_master(
        self,
        new: MasterKey,
        also: Callable[[Any, MasterKey, MasterKey], object] | None = None,
        *,
        busy_for: float = 120.0,
    ) -> int:
        """Re-wrap every live data key under `new`, in one transaction (with
        `also(cursor, old, new)` for other data under the master key), and
        record `new` as the store's master key. Returns how many keys.

        While writers keep the store busy (a lock not granted in time, a
        deadlock broken by PostgreSQL), it tries again, for up to
        `busy_for` seconds: nothing is changed by a try that fails."""
        deadline = time.monotonic() + busy_for
        delay = 0.05
        for attempt in itertools.count(1):
            try:
                count = self._rotate_once(new, also)
            except BUSY_ERRORS as e:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning(
                    "store busy, rotation retried", attempt=attempt, error=str(e)
                )
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            self.master = new
            return count
        raise AssertionError("unreachable")

    def _rotate_once(
        self,
        new: MasterKey,
        also: Callable[[Any, MasterKey, MasterKey], object] | None,
    ) -> int:
        p, t = self.t.p, self.t
        count = 0
        with self._transaction(commit=True) as c:
            # The write lock before any read (a read first would pin a
            # snapshot that a writer's commit makes stale: SQLite then fails
            # at our first write instead of waiting).
            c.execute(t.write_lock)
            # Locked until commit: writers creating keys wait for the rotation.
            self.require_master(
                c,
                t.for_share.replace("SHARE", "UPDATE"),
                f"not under the configured {self.master.id}",
            )
            c.execute(
                f"SELECT customer_id, key_id, wrapped FROM {t.data_keys} "
                "WHERE key_id IS NOT NULL"
            )
            for r in c.fetchall():
                cid, key_id, wrapped = r["customer_id"], r["key_id"], r["wrapped"]
                aad = wrap_aad(cid, key_id)
                data_key = self.master.open(bytes(wrapped), aad)
                c.execute(
                    f"UPDATE {t.data_keys} SET wrapped = {p}, master_id = {p} "
                    f"WHERE customer_id = {p} AND key_id = {p}",
                    (new.seal(data_key, aad), new.id, cid, key_id),
                )
                count += 1
            if also is not None:
                also(c, self.master, new)
            self.set_meta(c, "master_id", new.id)
        return count

    def erasures(self, customer_id: str | None = None) -> list[tuple[str, str, int]]:
        """The audit trail: (customer id, erased at, events), oldest first."""
        sql = f"SELECT customer_id, erased_at, events FROM {self.t.erasures}"
        params: tuple[Any, ...] = ()
        if customer_id is not None:
            sql += f" WHERE customer_id = {self.t.p}"
            params = (customer_id,)
        with self._transaction(commit=False) as c:
            c.execute(sql + " ORDER BY id", params)
            return [
                (r["customer_id"], r["erased_at"], int(r["events"]))
                for r in c.fetchall()
            ]
