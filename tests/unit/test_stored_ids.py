"""Stored ids are uuid5 of the event id, forever: the faster spelling must
give the same UUID for every id, or an old id could be stored again."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from service.storedevents import ID_NAMESPACE, originator_id


@given(st.text())
def test_the_same_uuid_as_uuid5(event_id: str) -> None:
    expected = uuid.uuid5(ID_NAMESPACE, event_id)
    got = originator_id(event_id)
    assert got == expected
    assert (got.version, got.variant, str(got)) == (5, uuid.RFC_4122, str(expected))


def test_known_values() -> None:
    # Fixed for ever: these ids are in stored logs.
    assert str(originator_id("evt_1")) == "236a854d-3484-5f05-8568-d669f79d4308"
    assert str(uuid.uuid5(ID_NAMESPACE, "evt_1")) == str(originator_id("evt_1"))
    assert originator_id("").hex == uuid.uuid5(ID_NAMESPACE, "").hex
    assert originator_id("é\x00☃").int == uuid.uuid5(ID_NAMESPACE, "é\x00☃").int
