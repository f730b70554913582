"""Domain read models and stored events -> protobuf messages (pure, no I/O),
one module per what is converted: customers.py (read models, ledger
entries), events.py (stored events, event types), payloads.py (each event's
typed payload) and scalars.py (times, exact numbers) beneath them.

A message constructor leaves a field unset when given None, which is how
every "absent" (None string, optional number, missing timestamp or part) is
mapped here.
"""

from service.rpc.convert import customers, events, scalars
from service.rpc.convert.customers import customer_to_proto, ledger_entry_to_proto
from service.rpc.convert.events import (
    EVENT_TYPE_TO_PROTO,
    event_to_proto,
    event_type_from_proto,
    stream_item,
)

__all__ = [
    "EVENT_TYPE_TO_PROTO",
    "customer_to_proto",
    "customers",
    "event_to_proto",
    "event_type_from_proto",
    "events",
    "ledger_entry_to_proto",
    "scalars",
    "stream_item",
]
