"""Realistic JeriCommerce traffic: the one generator of the test kit.

- catalogue: the vocabulary and the weights of the event types;
- customers: what the sender knows about each customer;
- properties: what each of the 18 event types carries (one builder each);
- webhook: the envelope, the header's spellings, unknown and poison events;
- mix: weighted streams (the bench, the kill test, the integration tests);
- stories: believable per-customer histories (the demo).
"""

from testkit.traffic.mix import customer_id, deliveries, plan_events, webhooks
from testkit.traffic.webhook import Webhook

__all__ = ["Webhook", "customer_id", "deliveries", "plan_events", "webhooks"]
