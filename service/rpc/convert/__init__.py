"""Domain read models and stored events -> protobuf messages (pure, no I/O),
one module per what is converted: states.py (a customer's fold state),
ledger.py (points-ledger entries), events.py (stored events, event
types), payloads.py (each event's typed payload) and scalars.py (times,
exact numbers) beneath them.

A message constructor leaves a field unset when given None, which is how
every "absent" (None string, optional number, missing timestamp or part) is
mapped here.
"""

from service.rpc.convert import events, ledger, scalars, states
from service.rpc.convert.events import (
    EVENT_TYPE_TO_PROTO,
    event_to_proto,
    event_type_from_proto,
    stream_item,
)
from service.rpc.convert.ledger import ledger_entry_to_proto
from service.rpc.convert.states import customer_from_state

__all__ = [
    "EVENT_TYPE_TO_PROTO",
    "customer_from_state",
    "event_to_proto",
    "event_type_from_proto",
    "events",
    "ledger",
    "ledger_entry_to_proto",
    "scalars",
    "states",
    "stream_item",
]
