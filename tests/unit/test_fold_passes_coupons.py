"""The read-model rules of docs/read-models.md, one example at a time: the
wallet pass, coupons and gift cards."""

from __future__ import annotations

from typing import Any

from projections.customer import (
    WalletPassStatus,
    fold,
)
from projections.events import EventType as T
from projections.events import RecordedEvent
from testkit.examples import at, customer
from testkit.recorded import make_event

# --- wallet pass -------------------------------------------------------------


def test_wallet_pass_none_then_requested() -> None:
    assert customer(make_event(T.CUSTOMER_TAPPED, id="e0")).wallet_pass.status == (
        WalletPassStatus.NONE
    )
    wallet = customer(
        make_event(
            T.WALLET_PASS_REQUESTED, id="e1", created_at=at(0), downloadLink="old"
        ),
        make_event(
            T.WALLET_PASS_REQUESTED, id="e2", created_at=at(1), downloadLink="new"
        ),
    ).wallet_pass
    assert wallet.status == WalletPassStatus.REQUESTED == "REQUESTED"
    assert (wallet.download_link, wallet.requested_at) == ("new", at(1))
    assert (wallet.installed_at, wallet.uninstalled_at) == (None, None)


def test_wallet_pass_newest_of_installed_and_uninstalled_decides() -> None:
    requested = make_event(T.WALLET_PASS_REQUESTED, id="e1", created_at=at(0))
    installed = make_event(T.WALLET_PASS_INSTALLED, id="e2", created_at=at(1))
    uninstalled = make_event(T.WALLET_PASS_UNINSTALLED, id="e3", created_at=at(2))
    reinstalled = make_event(T.WALLET_PASS_INSTALLED, id="e4", created_at=at(3))

    wallet = customer(uninstalled, installed, requested).wallet_pass
    assert wallet.status == WalletPassStatus.UNINSTALLED
    assert (wallet.installed_at, wallet.uninstalled_at) == (at(1), at(2))
    assert wallet.download_link is None

    wallet = customer(reinstalled, uninstalled, installed).wallet_pass
    assert wallet.status == WalletPassStatus.INSTALLED
    assert (wallet.installed_at, wallet.requested_at) == (at(3), None)


def test_wallet_pass_install_and_uninstall_at_one_instant_tie_on_id() -> None:
    installed = make_event(T.WALLET_PASS_INSTALLED, id="e2")
    uninstalled = make_event(T.WALLET_PASS_UNINSTALLED, id="e1")
    assert customer(installed, uninstalled).wallet_pass.status == "INSTALLED"
    uninstalled = make_event(T.WALLET_PASS_UNINSTALLED, id="e3")
    assert customer(uninstalled, installed).wallet_pass.status == "UNINSTALLED"


# --- coupons -----------------------------------------------------------------


def coupon(code: str, id: str, minute: int, **properties: Any) -> RecordedEvent:
    return make_event(
        T.COUPON_ASSIGNED, id=id, created_at=at(minute), code=code, **properties
    )


def coupon_pass(
    kind: T, id: str, minute: int, code: str | None = None
) -> RecordedEvent:
    props = {} if code is None else {"code": code}
    return make_event(kind, id=id, created_at=at(minute), props=props)


def test_coupons_one_per_code_newest_assignment_wins_sorted_by_code() -> None:
    c = customer(
        coupon("B", "e1", 0, header="old"),
        coupon("B", "e2", 2, header="new", body="b", slug="s", assignedFrom="x"),
        coupon("A", "e3", 1, installUrl="https://pass/a"),
    )
    assert [x.code for x in c.coupons] == ["A", "B"]
    a, b = c.coupons
    assert (a.install_url, a.assigned_at, a.header) == ("https://pass/a", at(1), None)
    assert (b.header, b.body, b.slug, b.assigned_from, b.assigned_at) == (
        "new",
        "b",
        "s",
        "x",
        at(2),
    )
    assert not a.pass_installed and not b.pass_installed


def test_coupon_pass_events_with_code_set_pass_installed_even_if_early() -> None:
    installed = coupon_pass(T.COUPON_PASS_INSTALLED, "e1", 0, code="A")
    assigned = coupon("A", "e2", 5)
    for order in ([installed, assigned], [assigned, installed]):
        c = customer(*order)
        assert c.coupons[0].pass_installed
        assert c.coupon_passes_installed == 1
    uninstalled = coupon_pass(T.COUPON_PASS_UNINSTALLED, "e3", 1, code="A")
    c = customer(uninstalled, assigned, installed)
    assert not c.coupons[0].pass_installed
    assert c.coupon_passes_installed == 0


def test_coupon_pass_events_without_code_only_count() -> None:
    c = customer(
        coupon("A", "e1", 0),
        coupon_pass(T.COUPON_PASS_INSTALLED, "e2", 1),
        coupon_pass(T.COUPON_PASS_INSTALLED, "e3", 2),
        coupon_pass(T.COUPON_PASS_UNINSTALLED, "e4", 3),
        coupon_pass(T.COUPON_PASS_INSTALLED, "e5", 4, code="Z"),
    )
    assert c.coupon_passes_installed == 2
    assert [(x.code, x.pass_installed) for x in c.coupons] == [("A", False)]


def test_coupon_passes_installed_never_goes_negative() -> None:
    c = customer(
        coupon_pass(T.COUPON_PASS_UNINSTALLED, "e1", 0),
        coupon_pass(T.COUPON_PASS_UNINSTALLED, "e2", 1),
        coupon_pass(T.COUPON_PASS_INSTALLED, "e3", 2),
    )
    assert c.coupon_passes_installed == 0


def test_coupon_without_code_is_poison() -> None:
    result = fold("c1", [make_event(T.COUPON_ASSIGNED, id="e1", header="h")])
    assert result.dead == [("e1", "code is missing")]
    result = fold("c1", [make_event(T.COUPON_ASSIGNED, id="e1", code=" ")])
    assert result.dead == [("e1", "code is missing")]
    assert (
        customer(make_event(T.COUPON_ASSIGNED, id="e1", code=42)).coupons[0].code
        == "42"
    )


# --- gift cards --------------------------------------------------------------


def test_gift_cards_one_per_code_newest_wins() -> None:
    c = customer(
        make_event(
            T.GIFT_CARD_SENT, id="e1", created_at=at(0), code="G2", mailSent=False
        ),
        make_event(
            T.GIFT_CARD_SENT,
            id="e2",
            created_at=at(3),
            code="G2",
            header="h",
            body="b",
            slug="s",
            assignedFrom="a",
            installUrl="u",
            mailSent=True,
        ),
        make_event(T.GIFT_CARD_SENT, id="e3", created_at=at(1), code="G1"),
    )
    assert [(g.code, g.mail_sent, g.sent_at) for g in c.gift_cards] == [
        ("G1", False, at(1)),
        ("G2", True, at(3)),
    ]
    g2 = c.gift_cards[1]
    assert (g2.header, g2.body, g2.slug, g2.assigned_from, g2.install_url) == (
        "h",
        "b",
        "s",
        "a",
        "u",
    )


def test_gift_card_without_code_or_with_odd_mail_sent_is_poison() -> None:
    result = fold(
        "c1",
        [
            make_event(T.GIFT_CARD_SENT, id="e1"),
            make_event(T.GIFT_CARD_SENT, id="e2", code="G", mailSent="maybe"),
        ],
    )
    assert result.dead == [
        ("e1", "code is missing"),
        ("e2", "mailSent is not a boolean"),
    ]
