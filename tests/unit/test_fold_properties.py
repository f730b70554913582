"""Properties of the fold: a function of the set of events, order and copies
notwithstanding; the codec is exact; incremental apply equals fold."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
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
from testkit.recorded import make_event

CUSTOMERS = ("c1", "c2", "c3")
T0 = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)

# Few distinct instants, so that ties on created_at (broken by id) are common.
times = st.sampled_from([T0, T0 + timedelta(microseconds=1), T0 + timedelta(seconds=1)])
words = st.sampled_from(["a", "b", "Gold", "Silver", "ñandú", ""])
maybe_text = st.one_of(st.none(), words, st.integers(0, 99))  # numbers: stringified
# Spoils a property: unusable for a text or number field, or (None) missing.
spoilers = st.sampled_from([{"x": 1}, [1], True, None])
spoils = st.sampled_from([False, False, False, False, False, True])
codes = st.sampled_from(["A", "B", "C", 7])
reward_ids = st.sampled_from(["r1", "r2", 3])
claim_ids = st.sampled_from(["k1", "e01", "e02"])  # eNN: also event ids
money = st.one_of(
    st.integers(-1000, 1000),
    st.decimals(-100, 100, places=2, allow_nan=False, allow_infinity=False),
    st.sampled_from(["10", "0.5", "1e2", "-0.10"]),
)
maybe_money = st.one_of(st.none(), money)


def shape(
    required: dict[str, st.SearchStrategy[Any]] | None = None,
    /,
    **optional: st.SearchStrategy[Any],
) -> st.SearchStrategy[dict[str, Any]]:
    """Properties with the required fields and some of the optional ones; one
    time in six a field is spoilt (which poisons the event if the fold reads
    it, and is kept verbatim otherwise)."""
    good = st.fixed_dictionaries(required or {}, optional=optional).map(dict)
    names = [*(required or {}), *optional]
    if not names:
        return good
    return st.tuples(good, spoils, st.sampled_from(names), spoilers).map(
        lambda t: {**t[0], t[2]: t[3]} if t[1] else t[0]
    )


utm = {"utmSource": maybe_text, "utmMedium": maybe_text, "utmCampaign": maybe_text}
details = {
    k: maybe_text for k in ("header", "body", "slug", "assignedFrom", "installUrl")
}

PROPERTIES: dict[T | str, st.SearchStrategy[dict[str, Any]]] = {
    T.CUSTOMER_CREATED: shape(
        email=maybe_text,
        origin=maybe_text,
        referral=maybe_text,
        firstName=maybe_text,
        lastName=maybe_text,
        phoneNumber=maybe_text,
        **utm,
    ),
    T.CUSTOMER_BIRTHDAY: shape(age=st.one_of(st.integers(0, 99), st.just("41"))),
    T.CUSTOMER_SCANNED: shape(location=st.just({"lat": 1}), device=st.just(["i"])),
    T.CUSTOMER_TAPPED: shape(device=st.just({"os": "ios"})),
    T.WALLET_PASS_REQUESTED: shape(
        downloadLink=maybe_text, email=maybe_text, referral=maybe_text, **utm
    ),
    T.WALLET_PASS_INSTALLED: shape(referral=maybe_text, **utm),
    T.WALLET_PASS_UNINSTALLED: shape(referral=maybe_text, **utm),
    T.BALANCE_CHANGED: shape(
        {"amount": st.one_of(money, money, money, st.just("lots"))},
        reference=maybe_text,
        previousBalance=maybe_money,
        pointsToNextReward=maybe_money,
        nextRewardName=maybe_text,
    ),
    T.TIER_CHANGED: shape(previous=words, current=words),
    T.COUPON_ASSIGNED: shape({"code": codes}, **details),
    T.COUPON_PASS_INSTALLED: shape(code=codes, referral=maybe_text),
    T.COUPON_PASS_UNINSTALLED: shape(code=codes, referral=maybe_text),
    T.GIFT_CARD_SENT: shape({"code": codes}, mailSent=st.booleans(), **details),
    T.REWARD_REDEEMABLE: shape(
        {"rewardId": reward_ids},
        rewardLink=maybe_text,
        rewardTitle=maybe_text,
        rewardValue=maybe_money,
        rewardCost=maybe_money,
        customerRemainingBalance=maybe_money,
    ),
    T.REWARD_REDEEMED: shape(
        {"rewardId": reward_ids},
        claimId=claim_ids,
        code=maybe_text,
        rewardLink=maybe_text,
        rewardTitle=maybe_text,
    ),
    T.REWARD_REFUNDED: shape({"claimId": claim_ids}),
    T.WALLET_CLICK: shape(url=words, browser=words, **utm),
    T.WALLET_VISIT: shape(name=words, url=words, referral=maybe_text, **utm),
    "Points expired": shape(amount=money),  # unknown to the folds
    "balance_changed": shape({"amount": money}),  # a name variant
}
assert all(t in PROPERTIES for t in T)

# Types that interact, drawn together so that they meet (swarm testing).
GROUPS: list[list[T | str]] = [
    [T.BALANCE_CHANGED, "balance_changed", "Points expired"],
    [T.COUPON_ASSIGNED, T.COUPON_PASS_INSTALLED, T.COUPON_PASS_UNINSTALLED],
    [T.REWARD_REDEEMABLE, T.REWARD_REDEEMED, T.REWARD_REFUNDED],
    [T.WALLET_PASS_REQUESTED, T.WALLET_PASS_INSTALLED, T.WALLET_PASS_UNINSTALLED],
    [T.CUSTOMER_CREATED, T.CUSTOMER_BIRTHDAY, T.TIER_CHANGED, T.GIFT_CARD_SENT],
    [T.CUSTOMER_SCANNED, T.CUSTOMER_TAPPED, T.WALLET_CLICK, T.WALLET_VISIT],
]
assert {t for group in GROUPS for t in group} == set(PROPERTIES)

customers = st.sampled_from(["c1", "c1", "c1", "c2", "c3"])  # c1 gets more
emails = st.sampled_from([None, None, "", " ", "a@x.com", "B@x.com"])


def event_specs(kinds: list[T | str]) -> st.SearchStrategy[Any]:
    return st.one_of(
        [st.tuples(st.just(k), customers, times, emails, PROPERTIES[k]) for k in kinds]
    )


@st.composite
def event_sets(draw: st.DrawFn) -> list[RecordedEvent]:
    groups = draw(st.lists(st.sampled_from(GROUPS), min_size=1, max_size=3))
    kinds = [kind for group in groups for kind in group]
    specs = draw(st.lists(event_specs(kinds), min_size=10, max_size=50))
    # Ids in an order unrelated to generation, so id tie-breaks are exercised.
    numbers = draw(st.permutations(range(len(specs))))
    return [
        make_event(
            kind,
            id=f"e{numbers[i]:02d}",
            customer_id=customer,
            created_at=when,
            position=3 * numbers[i] + 1,
            email=email,
            props=properties,
        )
        for i, (kind, customer, when, email, properties) in enumerate(specs)
    ]


def same(a: FoldResult, b: FoldResult) -> None:
    assert view(a.state) == view(b.state)
    assert a.ledger == b.ledger
    assert a.dead == b.dead
    assert encode_state(a.state) == encode_state(b.state)


fast = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


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
