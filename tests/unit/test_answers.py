"""The stored answers' encoding: the bytes a call sends, and their version."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta

from jericommerce.loyalty.v1 import customer_service_pb2 as pb

from projections.customer.model import fold, view
from projections.events import EventType as T
from service.rpc.answers import ANSWER_VERSION, encode_answer, length_delimited
from testkit.customer_message import customer_to_proto
from testkit.sources import ListSource, history

# The answers of a fixed history under ANSWER_VERSION. When this test fails
# the conversion (or view, or proto) changed what a state encodes to: bump
# ANSWER_VERSION, so stores re-make their answers, and record the new hash.
T0 = datetime(2026, 3, 8, 12, tzinfo=UTC)
FINGERPRINTS = {
    1: "4dbfd711493dbe62d12bb9c469ccbd783f48c5b7a83c302958d1043595b3909b",
}


def fixed_history(source: ListSource, n: int, seed: int) -> None:
    """Events that never change: the fingerprint is of the encoding, so its
    input must not follow the test kit's traffic generator as that evolves."""
    rnd = random.Random(seed)
    kinds = list(T)
    for i in range(n):
        cid = f"c{rnd.randrange(12)}"
        kind = rnd.choice(kinds)
        props: dict[str, object] = {}
        if kind is T.BALANCE_CHANGED:
            props = {"amount": rnd.randrange(-50, 200), "reference": f"r{i}"}
            if rnd.random() < 0.5:
                props["previousBalance"] = rnd.randrange(1000)
        elif kind is T.TIER_CHANGED:
            props = {"previous": "Silver", "current": rnd.choice(["Gold", "Silver"])}
        elif kind in (T.COUPON_ASSIGNED, T.GIFT_CARD_SENT):
            props = {"code": rnd.choice("ABC"), "header": "h"}
        elif kind in (T.COUPON_PASS_INSTALLED, T.COUPON_PASS_UNINSTALLED):
            props = {"code": rnd.choice("ABC")} if rnd.random() < 0.7 else {}
        elif kind in (T.REWARD_REDEEMABLE, T.REWARD_REDEEMED):
            props = {"rewardId": rnd.choice(["r1", "r2"]), "claimId": f"k{i % 5}"}
        elif kind is T.REWARD_REFUNDED:
            props = {"claimId": f"k{rnd.randrange(5)}"}
        elif kind is T.CUSTOMER_BIRTHDAY:
            props = {"age": rnd.randrange(18, 80)}
        source.add(
            kind,
            id=f"e{i:04d}",
            customer_id=cid,
            created_at=T0 + timedelta(minutes=rnd.randrange(500)),
            email=rnd.choice([None, f"{cid}@x.com", f"{cid.upper()}@X.COM"]),
            props=props,
        )
    source.add("Points expired", id="unknown-1", customer_id="c1")
    source.add(T.BALANCE_CHANGED, id="poison-1", customer_id="c2", amount="lots")


def answers_of_a_fixed_history() -> list[bytes]:
    source = ListSource()
    fixed_history(source, n=600, seed=11)
    ids = sorted({e.customer_id for e in source.events})
    return [encode_answer(fold(cid, source.events).state) for cid in ids]


def test_a_changed_encoding_comes_with_a_new_version() -> None:
    digest = hashlib.sha256(b"".join(answers_of_a_fixed_history())).hexdigest()
    assert FINGERPRINTS.get(ANSWER_VERSION) == digest, (
        "the stored answers' encoding changed: bump ANSWER_VERSION in "
        f"service/rpc/answers.py and record {digest} for it here"
    )


def test_an_answer_is_the_customer_message_a_call_would_build() -> None:
    source = ListSource()
    history(source)
    for cid in {e.customer_id for e in source.events}:
        state = fold(cid, source.events).state
        expected = customer_to_proto(view(state)).SerializeToString()
        assert encode_answer(state) == expected


def test_list_and_batch_responses_put_together_from_answers_parse_back() -> None:
    answers = answers_of_a_fixed_history()
    assert len(answers) > 3 and max(map(len, answers)) > 127  # multi-byte lengths
    body = length_delimited(1, answers) + length_delimited(2, [b"tok\xc3\xa9"])
    parsed = pb.ListCustomersResponse.FromString(body)
    assert [c.SerializeToString() for c in parsed.customers] == answers
    assert parsed.next_page_token == "toké"
    batch = pb.BatchGetCustomersResponse.FromString(length_delimited(1, answers))
    assert len(batch.customers) == len(answers)
    assert length_delimited(1, []) == b""
