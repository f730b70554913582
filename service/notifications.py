"""What a process does when another process commits events or applies them
(backends with several processes: PostgreSQL's NOTIFY, SQLite's datagrams):
the callbacks the backend's listener calls."""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections.worker import ProjectionWorker
from service import logs
from service.backends import Applied, Local, Notifications

if TYPE_CHECKING:
    from service.bootstrap import Container

log = logs.get(__name__)


def notifications(
    container: Container,
    local: Local,
    worker: ProjectionWorker | None,
    follow_events: bool,
) -> Notifications | None:
    """Hear other processes' commits, where the backend has several."""
    events, models = container.events, container.models
    head, applied = local.head, local.applied
    heard = 0  # the newest position a notification named (the listener's thread)

    def on_events(position: int | None) -> None:
        nonlocal heard
        if position is not None and position <= heard:
            # Told again (a front whose writer process told it first): the
            # wake-up for it is already given, and a second costs the worker
            # a read that finds nothing.
            return
        # The head, as the notification says it, or read (None: a sender that
        # says none, or a reconnection after which anything may have happened).
        try:
            head.advance(events.head() if position is None else position)
        except Exception as e:
            # The health watch polls the head as well; this only delays it.
            log.warning("could not read the head after NOTIFY", error=str(e))
        if position is not None:
            heard = position
        if worker is not None:
            worker.wake()

    def on_applied(commit: Applied | None) -> None:
        if commit is None:
            try:
                applied.advance(models.applied_position())
            except Exception as e:
                log.warning("could not read the applied position", error=str(e))
            return
        # A rebuild's generation is not what readers see until it is switched in.
        if commit.generation == models.current_generation():
            applied.advance(commit.position)

    return container.backend.notifications(
        events,
        on_events=on_events if follow_events else None,
        on_applied=on_applied,
        local=local,
    )
