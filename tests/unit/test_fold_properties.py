"""Properties of the fold: a function of the set of events, order and copies
notwithstanding; the codec is exact; incremental apply equals fold."""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from projections.customer import (
    FoldResult,
    PoisonEvent,
    apply,
    decode_state,
    encode_state,
    fold,
    new_state,
    view,
)
from projections.events import EventType as T
from projections.events import RecordedEvent
from testkit.strategies import CUSTOMERS, event_sets, fast


def same(a: FoldResult, b: FoldResult) -> None:
    assert view(a.state) == view(b.state)
    assert a.ledger == b.ledger
    assert a.dead == b.dead
    assert encode_state(a.state) == encode_state(b.state)


@fast
@given(events=event_sets(), data=st.data())
def test_fold_depends_only_on_the_set_of_events(
    events: list[RecordedEvent], data: st.DataObject
) -> None:
    copies = data.draw(st.lists(st.sampled_from(events), max_size=10))
    shuffled = data.draw(st.permutations(events + copies))
    for customer in (*CUSTOMERS, "nobody"):
        result = fold(customer, events)
        same(result, fold(customer, shuffled))
        # and, on the way, the codec and the numbers:
        encoded = encode_state(result.state)
        back = decode_state(encoded)
        assert back == result.state
        assert view(back) == view(result.state)
        assert encode_state(back) == encoded
        assert_exact_numbers(result)


def assert_exact_numbers(result: FoldResult) -> None:
    """Never a float; a Decimal only where the value is not whole."""
    c = view(result.state)
    numbers: list[Any] = [c.points_balance, c.points_to_next_reward]
    for r in c.redeemable_rewards:
        numbers += [r.reward_value, r.reward_cost, r.customer_remaining_balance]
    for e in result.ledger:
        numbers += [e.amount, e.previous_balance, e.points_to_next_reward]
    for n in numbers:
        assert n is None or type(n) is int or type(n) is Decimal
        if type(n) is Decimal:
            assert n != n.to_integral_value()


@fast
@given(events=event_sets(), data=st.data())
def test_apply_through_the_codec_equals_fold(
    events: list[RecordedEvent], data: st.DataObject
) -> None:
    order = data.draw(st.permutations(events))
    for customer in CUSTOMERS:
        reference = fold(customer, events)
        stored = encode_state(new_state(customer))
        ledger = []
        dead = []
        seen: set[str] = set()
        for event in order:
            if event.type is None or event.customer_id != customer or event.id in seen:
                continue
            seen.add(event.id)
            state = decode_state(stored)
            try:
                entry = apply(state, event)
            except PoisonEvent as poison:
                dead.append((event.id, str(poison)))
                assert encode_state(state) == stored  # poison changes nothing
                continue
            if entry is not None:
                ledger.append(entry)
            stored = encode_state(state)
        ledger.sort(key=lambda entry: (entry.created_at, entry.event_id))
        same(reference, FoldResult(decode_state(stored), ledger, sorted(dead)))


# Which properties each type reads, and as what (the policy written out in
# projections/fields.py, restated here so the reference does not
# take the fold's word for which events are poison).
TEXT, KEY_TEXT, NUMBER, KEY_NUMBER, INTEGER, FLAG = range(6)
DETAILS = dict.fromkeys(("header", "body", "slug", "assignedFrom", "installUrl"), TEXT)
READS: dict[T, dict[str, int]] = {
    T.CUSTOMER_CREATED: dict.fromkeys(
        (
            "firstName",
            "lastName",
            "phoneNumber",
            "origin",
            "referral",
            "utmSource",
            "utmMedium",
            "utmCampaign",
        ),
        TEXT,
    ),
    T.CUSTOMER_BIRTHDAY: {"age": INTEGER},
    T.CUSTOMER_SCANNED: {},
    T.CUSTOMER_TAPPED: {},
    T.WALLET_PASS_REQUESTED: {"downloadLink": TEXT},
    T.WALLET_PASS_INSTALLED: {},
    T.WALLET_PASS_UNINSTALLED: {},
    T.BALANCE_CHANGED: {
        "amount": KEY_NUMBER,
        "previousBalance": NUMBER,
        "pointsToNextReward": NUMBER,
        "nextRewardName": TEXT,
        "reference": TEXT,
    },
    T.TIER_CHANGED: {"current": TEXT, "previous": TEXT},
    T.COUPON_ASSIGNED: {"code": KEY_TEXT, **DETAILS},
    T.COUPON_PASS_INSTALLED: {"code": TEXT},
    T.COUPON_PASS_UNINSTALLED: {"code": TEXT},
    T.GIFT_CARD_SENT: {"code": KEY_TEXT, "mailSent": FLAG, **DETAILS},
    T.REWARD_REDEEMABLE: {
        "rewardId": KEY_TEXT,
        "rewardLink": TEXT,
        "rewardTitle": TEXT,
        "rewardValue": NUMBER,
        "rewardCost": NUMBER,
        "customerRemainingBalance": NUMBER,
    },
    T.REWARD_REDEEMED: {
        "rewardId": KEY_TEXT,
        "rewardLink": TEXT,
        "rewardTitle": TEXT,
        "code": TEXT,
        "claimId": TEXT,
    },
    T.REWARD_REFUNDED: {"claimId": KEY_TEXT},
    T.WALLET_CLICK: {},
    T.WALLET_VISIT: {},
}
assert set(READS) == set(T)
NUMERIC = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")


def usable(value: Any, kind: int) -> bool:
    """Whether a value the strategies above draw is usable as `kind`."""
    if value is None:
        return kind not in (KEY_TEXT, KEY_NUMBER)
    if kind in (TEXT, KEY_TEXT):
        if type(value) not in (str, int, Decimal):
            return False
        return kind == TEXT or bool(str(value).strip())
    if kind in (NUMBER, KEY_NUMBER, INTEGER):
        if type(value) is str and NUMERIC.fullmatch(value):
            value = Decimal(value)
        if type(value) not in (int, Decimal):
            return False
        return kind != INTEGER or value == int(value)
    if type(value) is str:  # FLAG
        return value.lower() in ("true", "false")
    return type(value) is bool or (type(value) is int and value in (0, 1))


def poison_ids(events: list[RecordedEvent]) -> set[str]:
    return {
        e.id
        for e in events
        if e.type is not None
        and not all(
            usable(e.properties.get(name), kind) for name, kind in READS[e.type].items()
        )
    }


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def oracle(
    customer: str, events: list[RecordedEvent], dead: set[str]
) -> dict[str, Any]:
    """docs/read-models.md read naively: sort the customer's usable events,
    newest last, and let later ones overwrite earlier ones."""
    mine = {
        e.id: e
        for e in events
        if e.type is not None and e.customer_id == customer and e.id not in dead
    }
    out: dict[str, Any] = {
        "email": None,
        "registered_at": None,
        "tier": None,
        "installed": None,
        "uninstalled": None,
        "requested": None,
        "coupons": {},
        "passes": {},
        "claims": {},
        "refunds": {},
        "counts": Counter(),
        "sum": Decimal(0),
        "newest_balance": None,
        "birthday": None,
    }
    for e in sorted(mine.values(), key=lambda e: e.sort_key):
        p = e.properties
        email = e.body.get("email")
        if isinstance(email, str) and email.strip():
            out["email"] = (email.strip(), (e.created_at, e.id))
        out["counts"][e.type] += 1
        if e.type is T.CUSTOMER_CREATED:
            out["registered_at"] = e.created_at
        elif e.type is T.TIER_CHANGED:
            out["tier"] = (_text(p.get("current")), _text(p.get("previous")))
        elif e.type is T.WALLET_PASS_REQUESTED:
            out["requested"] = (e.created_at, _text(p.get("downloadLink")))
        elif e.type is T.WALLET_PASS_INSTALLED:
            out["installed"] = e.created_at
            out["status"] = "INSTALLED"
        elif e.type is T.WALLET_PASS_UNINSTALLED:
            out["uninstalled"] = e.created_at
            out["status"] = "UNINSTALLED"
        elif e.type is T.COUPON_ASSIGNED:
            out["coupons"][str(p["code"])] = e.created_at
        elif e.type in (T.COUPON_PASS_INSTALLED, T.COUPON_PASS_UNINSTALLED):
            if p.get("code") not in (None, ""):
                out["passes"][str(p["code"])] = e.type is T.COUPON_PASS_INSTALLED
        elif e.type is T.REWARD_REDEEMED:
            claim = _text(p.get("claimId")) or e.id
            out["claims"][claim] = (str(p["rewardId"]), e.created_at)
        elif e.type is T.REWARD_REFUNDED:
            out["refunds"][str(p["claimId"])] = e.created_at
        elif e.type is T.BALANCE_CHANGED:
            out["sum"] += Decimal(str(p["amount"]))
            out["newest_balance"] = p
        elif e.type is T.CUSTOMER_BIRTHDAY:
            out["birthday"] = e.created_at
    if mine:
        newest = max(mine.values(), key=lambda e: e.sort_key)
        out["last_activity"] = newest.created_at
        out["position"] = max(e.position for e in mine.values())
    return out


@fast
@given(events=event_sets())
def test_fold_agrees_with_a_naive_reading_of_the_contract(
    events: list[RecordedEvent],
) -> None:
    for customer in CUSTOMERS:
        result = fold(customer, events)
        c = view(result.state)
        dead = poison_ids([e for e in events if e.customer_id == customer])
        assert {event_id for event_id, _ in result.dead} == dead
        want = oracle(customer, events, dead)
        counts = want["counts"]
        assert c.event_count == sum(counts.values())
        if not counts:
            assert c == view(new_state(customer))
            continue
        assert c.position == want["position"]
        assert c.engagement.last_activity_at == want["last_activity"]
        email = want["email"]
        assert (c.email, c.email_seen_at) == (email if email else (None, None))
        assert c.registered_at == want["registered_at"]
        assert (c.tier.current, c.tier.previous) == (want["tier"] or (None, None))
        assert c.wallet_pass.status == want.get(
            "status", "REQUESTED" if want["requested"] else "NONE"
        )
        assert (c.wallet_pass.requested_at, c.wallet_pass.download_link) == (
            want["requested"] or (None, None)
        )
        assert c.wallet_pass.installed_at == want["installed"]
        assert c.wallet_pass.uninstalled_at == want["uninstalled"]
        assert {x.code: x.assigned_at for x in c.coupons} == want["coupons"]
        assert {x.code: x.pass_installed for x in c.coupons} == {
            code: want["passes"].get(code, False) for code in want["coupons"]
        }
        assert c.coupon_passes_installed == max(
            0, counts[T.COUPON_PASS_INSTALLED] - counts[T.COUPON_PASS_UNINSTALLED]
        )
        assert {
            r.claim_id: (r.reward_id, r.redeemed_at, r.refunded_at)
            for r in c.redeemed_rewards
        } == {
            claim: (*redeemed, want["refunds"].get(claim))
            for claim, redeemed in want["claims"].items()
        }
        assert all(
            r.refunded == (r.refunded_at is not None) for r in c.redeemed_rewards
        )
        newest = want["newest_balance"]
        if newest is not None and newest.get("previousBalance") is not None:
            balance = Decimal(str(newest["previousBalance"])) + Decimal(
                str(newest["amount"])
            )
        else:
            balance = want["sum"]
        assert c.points_balance == balance
        assert (c.engagement.scans, c.engagement.taps) == (
            counts[T.CUSTOMER_SCANNED],
            counts[T.CUSTOMER_TAPPED],
        )
        assert (c.engagement.wallet_clicks, c.engagement.wallet_visits) == (
            counts[T.WALLET_CLICK],
            counts[T.WALLET_VISIT],
        )
        assert c.birthday.last_celebrated_at == want["birthday"]
