"""Every error the stores and keys can raise while serving maps to a gRPC
status a caller can act on: UNAVAILABLE (retry) for the store and the master
key, with a message of ours (a driver's text may quote its statement)."""

from __future__ import annotations

import sqlite3

import grpc
import psycopg
import pytest
from eventsourcing.persistence import OperationalError, PersistenceError

from projections.stores.sql import StalePosition
from service.eventstore import StoreUnavailable
from service.keyring import KeysChanged, WrongMasterKey
from service.rpc.errors import status_for

SECRET_TEXT = "SELECT ... WHERE email = 'ana@example.com'"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (WrongMasterKey(SECRET_TEXT), "MASTER_KEY_ROTATED"),
        (StoreUnavailable(SECRET_TEXT), "STORE_UNAVAILABLE"),
        (KeysChanged(SECRET_TEXT), "STORE_UNAVAILABLE"),
        (StalePosition(SECRET_TEXT), "STORE_UNAVAILABLE"),
        (sqlite3.OperationalError(SECRET_TEXT), "STORE_UNAVAILABLE"),
        (psycopg.OperationalError(SECRET_TEXT), "STORE_UNAVAILABLE"),
        (OperationalError(SECRET_TEXT), "STORE_UNAVAILABLE"),
        (PersistenceError(SECRET_TEXT), "STORE_UNAVAILABLE"),
        (ConnectionRefusedError(SECRET_TEXT), "STORE_UNAVAILABLE"),
    ],
)
def test_store_and_key_errors_are_unavailable(error: Exception, reason: str) -> None:
    code, got, message = status_for(error)
    assert (code, got) == (grpc.StatusCode.UNAVAILABLE, reason)
    assert "ana@example.com" not in message and "retry" in message


def test_a_bug_is_internal_never_unknown() -> None:
    code, reason, message = status_for(ZeroDivisionError("x"))
    assert (code, reason, message) == (
        grpc.StatusCode.INTERNAL,
        "INTERNAL",
        "internal error",
    )
