"""The one table from a webhook's outcome to its HTTP status, as
docs/webhooks.md lists them (rpc/errors.py is the same for gRPC).

An outcome is also the `outcome` label of the webhooks counter.
"""

from __future__ import annotations

import enum


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"  # stored now
    DUPLICATE = "duplicate"  # stored before: the first copy's position
    INVALID = "invalid"  # signed but unusable: quarantined
    BAD_SIGNATURE = "bad_signature"
    TOO_LARGE = "too_large"
    UNAVAILABLE = "unavailable"  # the store: retry later
    ERROR = "error"  # a fault of ours (500)


STATUS: dict[Outcome, int] = {
    Outcome.ACCEPTED: 200,
    Outcome.DUPLICATE: 200,
    Outcome.INVALID: 400,
    Outcome.BAD_SIGNATURE: 401,
    Outcome.TOO_LARGE: 413,
    Outcome.UNAVAILABLE: 503,
    Outcome.ERROR: 500,
}
