"""Production: every store in one PostgreSQL schema, any number of processes.

The ingress processes append concurrently, one worker applies at a time
(an advisory-lock lease) and LISTEN/NOTIFY tells every process of the
others' commits.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg

from projections.lease import Lease
from projections.stores.answers import Answers
from projections.stores.postgres import APPLIED_CHANNEL, open_postgres_read_models
from projections.stores.sql import SqlReadModels
from service.adapters.eventsourcing import notified_head, notify_channel
from service.backends.base import Applied, Local, Notifications, OpenedEvents
from service.backends.postgres.lease import PostgresLease
from service.backends.postgres.notify import Listener
from service.backends.postgres.store import (
    conninfo,
    library_env,
    open_postgres,
    schema_lock,
)
from service.config import ConfigError
from service.eventstore import EventStore
from service.masterkey import MasterKey, read_master_key
from service.quarantine import Quarantine


class PostgresBackend:
    name = "postgres"
    inline_reads = False  # a read is a network round trip: off the loop
    shared_writers = True
    # Nine round trips a wake-up, ~2.3 ms of CPU with the server's whatever
    # its size: at a commit's size most of the worker's cost per event
    # (docs/performance.md, "The worker on PostgreSQL").
    worker_linger = 0.02

    def __init__(self, database_url: str, master_key_file: Path | None = None) -> None:
        self.database_url = database_url
        self.master_key_file = master_key_file
        self.schema = library_env(database_url)["POSTGRES_SCHEMA"]

    def where(self) -> str:
        return "PostgreSQL (DATABASE_URL)"  # the URL may hold a password

    def master_key(self) -> tuple[MasterKey, Path, bool]:
        if self.master_key_file is None:
            raise ConfigError(
                "MASTER_KEY_FILE is missing, and has no default with DATABASE_URL: "
                "create one with `openssl rand -base64 32 > master.key; chmod 600 "
                "master.key` and set MASTER_KEY_FILE to its path (every process of "
                "the deployment needs the same file)"
            )
        return read_master_key(self.master_key_file), self.master_key_file, False

    def open_events(self, master: MasterKey) -> OpenedEvents:
        with schema_lock(self.database_url):
            events, quarantine, factory = open_postgres(self.database_url, master)
        return OpenedEvents(events, quarantine, factory.close)

    def open_models(self, answers: Answers) -> SqlReadModels:
        with schema_lock(self.database_url):
            return open_postgres_read_models(self.database_url, answers)

    def worker_lease(self) -> Lease:
        return PostgresLease(self.database_url)

    def notifications(
        self,
        events: EventStore,
        *,
        on_events: Callable[[int | None], None] | None,
        on_applied: Callable[[Applied | None], None],
        local: Local | None = None,
    ) -> Notifications | None:
        # `local` is unused: the recorder and the read models NOTIFY themselves.
        def applied(payload: str) -> None:
            if not payload:  # (re)connected: anything may have happened
                on_applied(None)
                return
            # "schema:generation:position"; other deployments share the channel.
            schema, _, rest = payload.partition(":")
            generation, _, position = rest.partition(":")
            if schema == self.schema:
                on_applied(Applied(int(generation), int(position)))

        channels: dict[str, Callable[[str], None]] = {APPLIED_CHANNEL: applied}
        if on_events is not None:

            def stored(payload: str) -> None:
                # The recorder NOTIFYs on every insert, "schema:head"; every
                # schema of the database shares the channel, and another
                # deployment's head is not ours to advance to.
                schema, head = notified_head(payload)
                if schema is None or schema == self.schema:
                    on_events(head)

            channels[notify_channel(events.recorder)] = stored
        return Listener(self.database_url, channels)

    def scrubber(
        self, events: EventStore, quarantine: Quarantine, models: SqlReadModels
    ) -> Callable[[], None]:
        """VACUUM the tables an erasure deleted from, so the dead row
        versions' space is marked free for reuse (PostgreSQL cannot
        overwrite them in place; docs/privacy.md says what remains until
        then)."""

        def scrub() -> None:
            g = models.current_generation(refresh=True)
            # The tables whose deleted rows held personal data or keys
            # (ledger, history and dead letters hold ids and numbers).
            tables = [
                events.keyring.t.data_keys,
                quarantine.table,
                models.db.name(f"customers_{g}"),
            ]
            env = library_env(self.database_url)
            with psycopg.connect(conninfo(env), autocommit=True) as c:
                for table in tables:
                    c.execute(f"VACUUM {table}")

        return scrub
