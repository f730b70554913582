"""Wallet pass: requested / installed / uninstalled, newest of each kept."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from ..events import RecordedEvent
from ..payload_types import WalletPassRequested
from .state import CustomerState, PassRequested, Stamp
from .timekeys import at, newer


class WalletPassStatus(enum.StrEnum):
    NONE = "NONE"
    REQUESTED = "REQUESTED"
    INSTALLED = "INSTALLED"
    UNINSTALLED = "UNINSTALLED"


@dataclass(frozen=True, slots=True)
class WalletPass:
    status: WalletPassStatus = WalletPassStatus.NONE
    download_link: str | None = None
    requested_at: datetime | None = None
    installed_at: datetime | None = None
    uninstalled_at: datetime | None = None


def on_requested(
    state: CustomerState, event: RecordedEvent, p: WalletPassRequested, us: int
) -> None:
    if newer(us, event.id, state.pass_requested):
        state.pass_requested = PassRequested(us, event.id, p.download_link)


def on_installed(
    state: CustomerState, event: RecordedEvent, p: object, us: int
) -> None:
    if newer(us, event.id, state.pass_installed):
        state.pass_installed = Stamp(us, event.id)


def on_uninstalled(
    state: CustomerState, event: RecordedEvent, p: object, us: int
) -> None:
    if newer(us, event.id, state.pass_uninstalled):
        state.pass_uninstalled = Stamp(us, event.id)


def pass_status(state: CustomerState) -> WalletPassStatus:
    installed = state.pass_installed
    uninstalled = state.pass_uninstalled
    if installed is not None and (
        uninstalled is None or newer(installed.us, installed.event_id, uninstalled)
    ):
        return WalletPassStatus.INSTALLED
    if uninstalled is not None:
        return WalletPassStatus.UNINSTALLED
    if state.pass_requested is not None:
        return WalletPassStatus.REQUESTED
    return WalletPassStatus.NONE


def wallet_pass_view(state: CustomerState) -> WalletPass:
    requested = state.pass_requested
    installed = state.pass_installed
    uninstalled = state.pass_uninstalled
    return WalletPass(
        status=pass_status(state),
        download_link=requested.download_link if requested else None,
        requested_at=at(requested.us) if requested else None,
        installed_at=at(installed.us) if installed else None,
        uninstalled_at=at(uninstalled.us) if uninstalled else None,
    )
