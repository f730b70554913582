"""Customer answers made once, when the projections write a customer, and
sent as stored bytes by GetCustomer, LookupCustomer, ListCustomers and
BatchGetCustomers (ExportCustomer parses one into its first message).

The bytes are the serialized `Customer` message, built straight from the
state (`convert.states`; one is made per changed customer) and held equal
to the view mapped field by field (`testkit.customer_message`) by
tests/unit/test_answers.py. ANSWER_VERSION names that encoding: bump it
whenever the conversion, the view or customer.proto changes what a state
encodes to, and the read models make every stored answer again at the next
start (tests/unit/test_answers.py fails until the version is bumped).
"""

from __future__ import annotations

from collections.abc import Iterable

from projections.customer.state import CustomerState
from projections.stores.answers import Answers
from service.rpc.convert.states import customer_from_state

ANSWER_VERSION = 1


def encode_answer(state: CustomerState) -> bytes:
    return customer_from_state(state).SerializeToString()


ANSWERS = Answers(ANSWER_VERSION, encode_answer)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def length_delimited(field: int, payloads: Iterable[bytes]) -> bytes:
    """Wire bytes of `payloads` as repeated field `field` (messages or
    strings): what the message's SerializeToString would write for them."""
    tag = _varint(field << 3 | 2)
    return b"".join(tag + _varint(len(p)) + p for p in payloads)
