"""Coupons: one per code, plus whose pass is installed.

Pass events may name their coupon (properties.code) or not; they may also
arrive before the assignment, so per-code pass state is kept on its own and
joined only in the view.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..events import RecordedEvent
from ..payload_types import CouponAssigned, CouponPassInstalled, CouponPassUninstalled
from .state import CouponPass, CouponSet, CustomerState
from .timekeys import at, newer


@dataclass(frozen=True, slots=True)
class Coupon:
    code: str
    header: str | None
    body: str | None
    slug: str | None
    assigned_from: str | None
    install_url: str | None
    assigned_at: datetime
    pass_installed: bool


def on_assigned(
    state: CustomerState, event: RecordedEvent, p: CouponAssigned, us: int
) -> None:
    code = p.code
    if newer(us, event.id, state.coupons.get(code)):
        state.coupons[code] = CouponSet(
            us, event.id, p.header, p.body, p.slug, p.assigned_from, p.install_url
        )


def _pass_code(p: CouponPassInstalled | CouponPassUninstalled) -> str | None:
    code = p.code
    return code if code and code.strip() else None


def on_pass_installed(
    state: CustomerState, event: RecordedEvent, p: CouponPassInstalled, us: int
) -> None:
    code = _pass_code(p)
    state.coupon_installs += 1
    if code is not None and newer(us, event.id, state.coupon_passes.get(code)):
        state.coupon_passes[code] = CouponPass(us, event.id, True)


def on_pass_uninstalled(
    state: CustomerState, event: RecordedEvent, p: CouponPassUninstalled, us: int
) -> None:
    code = _pass_code(p)
    state.coupon_uninstalls += 1
    if code is not None and newer(us, event.id, state.coupon_passes.get(code)):
        state.coupon_passes[code] = CouponPass(us, event.id, False)


def coupons_view(state: CustomerState) -> tuple[Coupon, ...]:
    passes = state.coupon_passes
    coupons = []
    for code, coupon in sorted(state.coupons.items()):
        installed = passes.get(code)
        coupons.append(
            Coupon(
                code=code,
                header=coupon.header,
                body=coupon.body,
                slug=coupon.slug,
                assigned_from=coupon.assigned_from,
                install_url=coupon.install_url,
                assigned_at=at(coupon.us),
                pass_installed=bool(installed and installed.installed),
            )
        )
    return tuple(coupons)


def passes_installed(state: CustomerState) -> int:
    return max(0, state.coupon_installs - state.coupon_uninstalls)
