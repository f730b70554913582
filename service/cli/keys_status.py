"""`loyalty keys status`: the master key, what is still in clear, and the
erasures, as a table or (`--json`) one object."""

from __future__ import annotations

import json
from typing import Any

from service.keyring import Keyring


def key_status(keyring: Keyring) -> dict[str, Any]:
    rows = keyring.erasures()
    # An erasure that removed no stored event (an unknown customer, or one
    # erased before) is a request on record, not an erased customer.
    erased = {cid for cid, _when, events in rows if events > 0}
    return {
        "master_key_id": keyring.master.id,
        "legacy_through_position": keyring.legacy_through(),
        "erased_customers": len(erased),
        "erasure_requests": len(rows),
    }


def print_key_status(keyring: Keyring, as_json: bool) -> int:
    status = key_status(keyring)
    if as_json:
        print(json.dumps(status))
        return 0
    legacy = status["legacy_through_position"]
    rows = {
        "master key": status["master_key_id"],
        "in clear": (
            f"events up to position {legacy}: run `loyalty keys encrypt-existing`"
            if legacy
            else "nothing (every stored event is encrypted)"
        ),
        "erased customers": status["erased_customers"],
        "erasure requests": (
            f"{status['erasure_requests']} (repeats and no-ops included)"
        ),
    }
    for key, value in rows.items():
        print(f"{key:<17} {value}")
    return 0
