"""The kit's one traffic generator: every stream it makes is what the
ingress accepts and what the folds can use, and all of them share the
builders of the 18 event types."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from projections.customer.model import fold
from projections.events import EventType
from service.ingest import parse_envelope
from testkit.demo.plan import plan
from testkit.sources import ListSource, history
from testkit.traffic import deliveries, plan_events, webhooks
from testkit.traffic.catalogue import WEIGHTS
from testkit.traffic.properties import BUILDERS
from testkit.traffic.stories import StoryWriter


def test_every_event_type_has_one_builder_and_a_weight() -> None:
    assert set(BUILDERS) == set(EventType) == set(WEIGHTS)


def test_planned_events_parse_and_fold_without_dead_letters() -> None:
    events = plan_events(random.Random(3), 600, poison_rate=0.0)
    assert {e.type for e in events} == {*EventType, None}
    source = ListSource()
    for e in events:
        envelope = parse_envelope(e.body, e.type_name)
        assert (envelope.id, envelope.customer_id) == (e.id, e.customer_id)
        body = json.loads(e.body)
        source.add(
            e.type or e.type_name,
            id=e.id,
            customer_id=e.customer_id,
            created_at=body["createdAt"],
            props=body["properties"],
        )
    for cid in {e.customer_id for e in events}:
        assert fold(cid, source.events).dead == [], cid


def test_poison_is_flagged_and_dead_lettered() -> None:
    events = plan_events(random.Random(4), 400, poison_rate=0.5, unknown_rate=0.0)
    poison = [e for e in events if e.poison]
    assert poison and all(e.type is EventType.BALANCE_CHANGED for e in poison)
    assert all(json.loads(e.body)["properties"]["amount"] == "lots" for e in poison)


def test_later_events_refer_to_what_the_customer_has() -> None:
    """A refund names a claim of an earlier redemption of the same customer."""
    events = plan_events(random.Random(5), 3000, customers=20, unknown_rate=0.0)
    claims: dict[str, set[str]] = {}
    refunds = matched = 0
    for e in events:
        props = json.loads(e.body)["properties"]
        if e.type is EventType.REWARD_REDEEMED and "claimId" in props:
            claims.setdefault(e.customer_id, set()).add(props["claimId"])
        if e.type is EventType.REWARD_REFUNDED:
            refunds += 1
            matched += props["claimId"] in claims.get(e.customer_id, set())
    assert refunds and matched >= refunds * 0.8


def test_streams_are_deterministic_for_a_seed() -> None:
    assert plan_events(random.Random(9), 200) == plan_events(random.Random(9), 200)
    a, b = ListSource(), ListSource()
    history(a, 80)
    history(b, 80)
    assert a.events == b.events
    first = list(webhooks(50, 5, tag="d", offset=10))
    assert first == list(webhooks(50, 5, tag="d", offset=10))


def test_deliveries_keep_every_event_and_add_copies() -> None:
    events = plan_events(random.Random(6), 300)
    sent = deliveries(random.Random(6), events)
    assert {e.id for e in sent} == {e.id for e in events}
    assert len(sent) > len(events)
    assert sent != events  # some arrive out of order


def test_the_showcase_story_has_every_event_type() -> None:
    story = StoryWriter(random.Random(1), "t", 0, full=True).write()
    names = {json.loads(d.body)["id"]: d.event_type for d in story.deliveries}
    assert set(names.values()) == {t.value for t in EventType}
    assert any(d.late for d in story.deliveries)


def test_the_demo_plan_holds_its_odd_deliveries() -> None:
    planned = plan(10, "t", random.Random(2))
    everything = planned.everything
    assert sum(d.event_id is None for d in everything) == 5  # invalid on purpose
    assert planned.poison in everything
    assert any(d.copy for d in everything)
    assert len({s.email for s in planned.stories}) == 10


def documented_properties() -> dict[str, set[str]]:
    """The properties docs/webhooks.md says the read models read, by type."""
    text = (Path(__file__).resolve().parents[2] / "docs/webhooks.md").read_text()
    rows = re.findall(r"^\| [a-z ]+ \| `([A-Z][a-z ]+)` \| (.*) \|$", text, re.M)
    return {name: set(re.findall(r"`(\w+)`", read)) for name, read in rows}


def test_every_documented_property_is_sent() -> None:
    documented = documented_properties()
    assert set(documented) == {t.value for t in EventType}
    sent: dict[str, set[str]] = {}
    for e in plan_events(random.Random(8), 4000, unknown_rate=0.0, poison_rate=0.0):
        assert e.type is not None
        sent.setdefault(e.type.value, set()).update(json.loads(e.body)["properties"])
    for name, read in documented.items():
        assert read <= sent[name], (name, read - sent[name])
