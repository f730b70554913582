"""Rows from before encryption on PostgreSQL: encrypted as v2 headers, and the
migration raises, counting nothing, when their keys keep changing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from service.bootstrap import Container, build
from service.config import Settings
from service.ingest import parse_envelope
from service.keyring import KeysChanged
from service.legacyrows import MigrationIncomplete
from service.storedheader import decode_header
from testkit.keys import master_key_file
from testkit.privacy import legacy_state

pytestmark = pytest.mark.postgres
RECEIVED = datetime(2026, 3, 9, 9, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def container(pg_url: str) -> Iterator[Container]:
    settings = Settings.from_environ(
        {"DATABASE_URL": pg_url, "MASTER_KEY_FILE": str(master_key_file())},
        require_secret=False,
    )
    c = build(settings)
    yield c
    c.close()


def _v0(event_id: str, customer_id: str) -> StoredEvent:
    body = {
        "id": event_id,
        "customerId": customer_id,
        "createdAt": "2026-03-08T12:00:00Z",
        "email": "legacy.person@example.com",
        "properties": {"amount": 3, "reference": "r"},
    }
    env = parse_envelope(json.dumps(body).encode(), "Balance changed")
    return legacy_state(env, RECEIVED)


def test_v0_rows_are_encrypted_as_v2(container: Container) -> None:
    container.events.recorder.insert_events([_v0("l1", "a"), _v0("l2", "b")])
    before = [(e.id, e.raw, e.received_at) for e in container.events.read(0, 10)]
    assert container.events.legacy.count() == 2
    assert container.events.legacy.encrypt_all() == 2
    assert container.events.legacy.count() == 0
    states = [s for _p, _t, s in container.events.index.scan(0, 10, (), None)[0]]
    assert all(s[:1] == b"\x02" and b"legacy.person" not in s for s in states)
    assert all(decode_header(s)[0].key_id for s in states)
    after = [(e.id, e.raw, e.received_at) for e in container.events.read(0, 10)]
    assert after == before


def test_the_migration_raises_when_keys_keep_changing(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    container.events.recorder.insert_events([_v0("l3", "c")])

    def racing(c: Any, used: Any) -> None:
        raise KeysChanged("an erasure raced the batch")

    monkeypatch.setattr(container.events.keyring, "verify", racing)
    with pytest.raises(MigrationIncomplete):
        container.events.legacy.encrypt_all()
    assert container.events.legacy.count() == 1
