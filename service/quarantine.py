"""Signed requests we could not store as events, kept for operators.

Nothing a sender signed is dropped: a body we cannot parse goes here with
its reason, its headers and the time, and can be listed (and later retried).
Bodies may hold personal data, so they are encrypted: with the customer's
data key where the body names a customer (erasing the customer deletes the
row and destroys the key), under the master key otherwise. Requests are
purged after the retention period (QUARANTINE_RETENTION_DAYS).
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag

from projections.stores.db import Dialect
from service.eventstore import STORE_ERRORS, StoreUnavailable
from service.ingest import InvalidWebhook, parse_created_at
from service.keyring import Keyring, KeysChanged, WrongMasterKey
from service.masterkey import MasterKey
from service.sealing import seal, unseal

MASTER = "master"  # key_id of a body sealed under the master key
# key_id of a body of an erased customer's, stored as its ids only
REDACTED = "redacted"
ERASED_RESOLUTION = "redacted: its customer was erased"
_LONG_AGO = datetime(1, 1, 2, tzinfo=UTC)

Transaction = Callable[..., AbstractContextManager[Any]]


@dataclass(frozen=True, slots=True)
class QuarantinedRequest:
    id: int
    received_at: datetime
    reason: str
    headers: dict[str, str]
    body: bytes  # decrypted; empty once the customer was erased
    resolution: str | None = None  # set once re-processed
    customer_id: str | None = None


class Quarantine:
    """A table beside the events, in the same database, spelt in the
    backend's `dialect` (its schema is the backend's, schema.py).

    `transaction` is the library datastore's `transaction(commit=...)`.
    """

    def __init__(
        self, transaction: Transaction, dialect: Dialect, keyring: Keyring
    ) -> None:
        self._transaction = transaction
        self._p = dialect.p
        self._table = dialect.name("quarantine")
        self.keyring = keyring

    @property
    def table(self) -> str:
        return self._table

    def _seal(self, body: bytes, received_at: str) -> tuple[bytes, str | None, str]:
        """(sealed body, customer id, key id).

        As for stored events, only a body created after its customer's last
        erasure may be sealed readable under a (new) data key; one created
        at or before it, or whose creation time cannot be read, of a customer
        ever erased keeps its ids and nothing else (`redacted`)."""
        aad = _aad(received_at)
        cid = customer_of(body)
        if cid is None:
            return self.keyring.seal_without_customer(body, aad), cid, MASTER
        created = created_of(body)
        # Unknown creation: never reason enough to make a new key for an
        # erased customer (a never-seen one gets a key all the same).
        key = self.keyring.for_append({cid: created or _LONG_AGO})[cid]
        erased = key.erased_at is not None and (
            created is None or created <= key.erased_at
        )
        if key.aead is None or key.key_id is None or erased:
            return redacted(body), cid, REDACTED
        return seal(key.aead, body, aad), cid, key.key_id

    def add(self, reason: str, headers: Mapping[str, str], body: bytes) -> int:
        p = self._p
        sql = (
            f"INSERT INTO {self._table} (received_at, reason, headers, body, "
            f"customer_id, key_id, resolution) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}) RETURNING id"
        )
        try:
            for _attempt in range(5):
                received_at = datetime.now(UTC).isoformat()
                sealed, cid, key_id = self._seal(body, received_at)
                row = (
                    received_at,
                    reason,
                    json.dumps(dict(headers), sort_keys=True),
                    sealed,
                    cid,
                    key_id,
                    ERASED_RESOLUTION if key_id == REDACTED else None,
                )
                try:
                    with self._transaction(commit=True) as c:
                        c.execute(sql, row)
                        row_id = int(_first(c.fetchone()))
                        if key_id == MASTER:
                            # A rotation that committed meanwhile resealed
                            # only the bodies it saw: refuse a stale key's.
                            self.keyring.require_master(
                                c,
                                self.keyring.t.for_share,
                                "now: restart with the MASTER_KEY_FILE it was "
                                "rotated to",
                            )
                        elif cid is not None and key_id != REDACTED:
                            # After the insert took the write lock: an erasure
                            # that destroyed the key meanwhile makes us redo it.
                            self.keyring.verify(c, {cid: key_id})
                        return row_id
                except KeysChanged:
                    continue
            raise StoreUnavailable("could not settle a quarantine racing an erasure")
        except (*STORE_ERRORS, WrongMasterKey) as e:  # the old key: 503 too
            raise StoreUnavailable(str(e)) from e

    def list(self, limit: int = 100, after_id: int = 0) -> list[QuarantinedRequest]:
        p = self._p
        sql = (
            f"SELECT {_COLUMNS} FROM {self._table} WHERE id > {p} ORDER BY id LIMIT {p}"
        )
        with self._transaction(commit=False) as c:
            c.execute(sql, (after_id, limit))
            return self._rows(c.fetchall())

    def get(self, request_id: int) -> QuarantinedRequest | None:
        sql = f"SELECT {_COLUMNS} FROM {self._table} WHERE id = {self._p}"
        with self._transaction(commit=False) as c:
            c.execute(sql, (request_id,))
            row = c.fetchone()
        return None if row is None else self._rows([row])[0]

    def _rows(self, rows: Sequence[Any]) -> builtins.list[QuarantinedRequest]:
        wanted = {
            r["customer_id"]
            for r in rows
            if r["key_id"] not in (None, MASTER, REDACTED) and r["customer_id"]
        }
        live = self.keyring.live(wanted) if wanted else {}
        items = []
        for r in rows:
            body = bytes(r["body"])
            aad = _aad(r["received_at"])
            if r["key_id"] == MASTER:
                body = self.keyring.open_without_customer(body, aad) or b""
            elif r["key_id"] == REDACTED:
                pass  # ids only, stored as such
            elif r["key_id"] is not None:
                key = live.get(r["customer_id"])
                try:
                    ok = key is not None and key[0] == r["key_id"]
                    body = unseal(key[1], body, aad) if ok else b""  # type: ignore[index]
                except InvalidTag:
                    body = b""
            items.append(_row(r, body))
        return items

    def erase_customer(self, c: Any, customer_id: str) -> int:
        """Delete the customer's requests, in an erasure's transaction `c`."""
        c.execute(
            f"DELETE FROM {self._table} WHERE customer_id = {self._p} RETURNING id",
            (customer_id,),
        )
        return len(c.fetchall())

    def purge(self, older_than: datetime) -> int:
        """Delete requests received before `older_than`; how many."""
        with self._transaction(commit=True) as c:
            c.execute(
                f"DELETE FROM {self._table} WHERE received_at < {self._p} RETURNING id",
                (older_than.astimezone(UTC).isoformat(),),
            )
            return len(c.fetchall())

    def reseal_master(self, c: Any, old: MasterKey, new: MasterKey) -> int:
        """Bodies sealed under the master key, sealed under `new` instead
        (inside the rotation's transaction `c`)."""
        p = self._p
        c.execute(
            f"SELECT id, received_at, body FROM {self._table} WHERE key_id = {p}",
            (MASTER,),
        )
        rows = c.fetchall()
        for r in rows:
            aad = _aad(r["received_at"])
            body = old.open(bytes(r["body"]), aad)
            c.execute(
                f"UPDATE {self._table} SET body = {p} WHERE id = {p}",
                (new.seal(body, aad), r["id"]),
            )
        return len(rows)

    def encrypt_existing(self) -> int:
        """Encrypt the bodies of requests stored before encryption."""
        p = self._p
        done = 0
        while True:
            with self._transaction(commit=False) as c:
                c.execute(
                    f"SELECT id, received_at, body FROM {self._table} "
                    f"WHERE key_id IS NULL ORDER BY id LIMIT 500"
                )
                rows = c.fetchall()
            if not rows:
                return done
            sealed = [
                (*self._seal(bytes(r["body"]), r["received_at"]), r["id"]) for r in rows
            ]
            with self._transaction(commit=True) as c:
                for body, cid, key_id, row_id in sealed:
                    c.execute(
                        f"UPDATE {self._table} SET body = {p}, customer_id = {p}, "
                        f"key_id = {p} WHERE id = {p} AND key_id IS NULL",
                        (body, cid, key_id, row_id),
                    )
            done += len(rows)

    def resolve(self, request_id: int, resolution: str) -> bool:
        """Mark a request re-processed; False if it already was."""
        p = self._p
        with self._transaction(commit=True) as c:
            c.execute(
                f"UPDATE {self._table} SET resolution = {p} "
                f"WHERE id = {p} AND resolution IS NULL RETURNING id",
                (resolution, request_id),
            )
            return c.fetchone() is not None

    def count(self) -> int:
        with self._transaction(commit=False) as c:
            c.execute(f"SELECT COUNT(*) AS n FROM {self._table}")
            return int(_first(c.fetchone()))

    def open_count(self) -> int:
        with self._transaction(commit=False) as c:
            c.execute(
                f"SELECT COUNT(*) AS n FROM {self._table} WHERE resolution IS NULL"
            )
            return int(_first(c.fetchone()))

    def __iter__(self) -> Iterator[QuarantinedRequest]:
        after = 0
        while batch := self.list(500, after):
            yield from batch
            after = batch[-1].id


def _first(row: Any) -> Any:
    return row[next(iter(row.keys()))] if hasattr(row, "keys") else row[0]


_COLUMNS = "id, received_at, reason, headers, body, resolution, customer_id, key_id"


def _aad(received_at: str) -> bytes:
    return b"quarantine\x00" + received_at.encode()


def customer_of(body: bytes) -> str | None:
    """The customer id a body names, if it can be read at all."""
    try:
        data = orjson.loads(body)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return None
    cid = data.get("customerId") if isinstance(data, dict) else None
    if isinstance(cid, str) and cid.strip() and len(cid) <= 1024:
        return cid
    return None


def created_of(body: bytes) -> datetime | None:
    """The body's createdAt, if it can be read."""
    try:
        data = orjson.loads(body)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    try:
        return parse_created_at(data.get("createdAt"))
    except InvalidWebhook:
        return None


def redacted(body: bytes) -> bytes:
    """What is kept of an erased customer's body: its ids (JSON)."""
    data = orjson.loads(body)  # customer_of read it
    kept = {
        k: data[k]
        for k in ("id", "customerId")
        if isinstance(data.get(k), str) and len(data[k]) <= 1024
    }
    return json.dumps(kept, sort_keys=True).encode()


def _row(r: Any, body: bytes) -> QuarantinedRequest:
    return QuarantinedRequest(
        id=int(r["id"]),
        received_at=datetime.fromisoformat(r["received_at"]),
        reason=r["reason"],
        headers=json.loads(r["headers"]),
        body=body,
        resolution=r["resolution"],
        customer_id=r["customer_id"],
    )
