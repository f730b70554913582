"""Out-of-space detection for readiness: which errors mean a full disk,
and how the mark clears (a probe at most once per interval, or any
successful append)."""

from __future__ import annotations

import errno
import sqlite3

import psycopg
import pytest
from eventsourcing.persistence import OperationalError

from service.diskspace import WriteSpace, is_out_of_space
from service.eventstore import StoreUnavailable


def wrapped(cause: BaseException) -> BaseException:
    """As the append path raises it: the library's error from the driver's,
    then ours."""
    try:
        try:
            raise OperationalError(str(cause)) from cause
        except OperationalError as e:
            raise StoreUnavailable(str(e)) from e
    except StoreUnavailable as e:
        return e


class DiskFull(psycopg.errors.DiskFull):
    pass


@pytest.mark.parametrize(
    "error",
    [
        sqlite3.OperationalError("database or disk is full"),
        wrapped(sqlite3.OperationalError("database or disk is full")),
        OSError(errno.ENOSPC, "No space left on device"),
        wrapped(DiskFull("could not extend file")),
    ],
)
def test_a_full_disk_is_recognised(error: BaseException) -> None:
    assert is_out_of_space(error)


@pytest.mark.parametrize(
    "error",
    [
        sqlite3.OperationalError("database is locked"),
        wrapped(psycopg.OperationalError("connection refused")),
        OSError(errno.EIO, "I/O error"),
    ],
)
def test_other_failures_are_not_a_full_disk(error: BaseException) -> None:
    assert not is_out_of_space(error)


def test_the_mark_clears_by_a_probe_at_most_once_an_interval() -> None:
    room = {"free": False, "probes": 0}

    def probe() -> None:
        room["probes"] += 1
        if not room["free"]:
            raise sqlite3.OperationalError("database or disk is full")

    space = WriteSpace(probe, every=3600)
    assert space.writable() and room["probes"] == 0  # no probe while fine
    space.saw(sqlite3.OperationalError("database is locked"))
    assert space.writable()
    space.saw(wrapped(sqlite3.OperationalError("database or disk is full")))
    assert not space.writable() and room["probes"] == 1
    room["free"] = True
    assert not space.writable() and room["probes"] == 1  # not yet: interval
    space.every = 0
    assert space.writable() and room["probes"] == 2


def test_a_successful_append_clears_the_mark() -> None:
    space = WriteSpace(lambda: None, every=3600)
    space.saw(OSError(errno.ENOSPC, "full"))
    space.wrote()
    assert space.writable()
