"""The test kit signs as the ingress verifies, and its traffic is valid."""

from __future__ import annotations

import pytest

from service.ingest import parse_envelope, verify_signature
from testkit import traffic
from testkit.signing import SECRET, STYLES, sign
from testkit.webhooks import webhook_body


@pytest.mark.parametrize("style", STYLES)
def test_every_signing_style_verifies_and_only_with_its_secret(style: str) -> None:
    body = webhook_body("k1", amount=3)
    assert verify_signature(body, sign(body, SECRET, style), [SECRET.encode()])
    assert not verify_signature(body, sign(body, "other", style), [SECRET.encode()])


def test_traffic_is_deterministic_unique_and_parses() -> None:
    first = list(traffic.webhooks(300, 20, tag="t"))
    assert first == list(traffic.webhooks(300, 20, tag="t"))
    envelopes = [parse_envelope(w.body, w.type_name) for w in first]
    assert len({e.id for e in envelopes}) == 300
    assert {e.customer_id for e in envelopes} == {
        traffic.customer_id(n) for n in range(20)
    }
    # A later piece of the stream goes on with the ids.
    later = [
        parse_envelope(w.body, w.type_name).id
        for w in traffic.webhooks(2, 20, tag="t", offset=300)
    ]
    assert later == ["t-00000300", "t-00000301"]
