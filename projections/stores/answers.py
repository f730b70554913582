"""Answers stored ready to send: how a customer's state becomes the bytes
the API returns for it.

The encoder is the service's (its view and wire format); the projections
only call it, once per changed customer per batch, and store the result
beside the state. `version` names the encoding: when it differs from the one
the stored answers were made with, every answer is made again
(SqlReadModels.setup), so a change to the conversion never serves stale
bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from projections.customer.state import CustomerState


@dataclass(frozen=True, slots=True)
class Answers:
    version: int
    encode: Callable[[CustomerState], bytes]


def _nothing(state: CustomerState) -> bytes:
    return b""


# For read models opened without the service (tools, tests of the folds):
# no answers are made, and version 0 says so.
NO_ANSWERS = Answers(0, _nothing)
