"""Encryption at rest, erasure, export and key management, on every backend.

Built through the composition root over real stores; the projection worker
runs synchronously (`run_once`) so each step is observable.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from jericommerce.loyalty.v1 import customer_pb2 as pb

from projections.rebuild import rebuild
from projections.worker import ProjectionWorker
from service.bootstrap import Container, build
from service.config import Settings
from service.errors import NotFound
from service.eventstore import StoreUnavailable
from service.keyring import WrongMasterKey
from service.masterkey import read_master_key, write_new_master_key
from service.privacy import Privacy
from service.reads import CustomerReads
from service.storedevents import ERASURE_TOPIC, sealed, topic_for
from testkit.keys import master_key_file
from testkit.privacy import ANA, body, created, legacy_state, points


class PrivacyContract:
    container: Container
    settings: Settings

    @property
    def privacy(self) -> Privacy:
        return self.container.privacy()

    @property
    def reads(self) -> CustomerReads:
        return CustomerReads(self.container.models, self.container.events)

    def project(self) -> None:
        ProjectionWorker(self.container.events, self.container.models).run_once()

    def raw_states(self) -> list[bytes]:
        """Every stored event's state as the database holds it."""
        raise NotImplementedError

    def erase(self, customer_id: str) -> None:
        erasure = self.privacy.erase(customer_id)
        self.project()
        self.privacy.finish(erasure)

    def seed(self) -> None:
        self.container.events.append(
            [
                created("a1", "ana"),
                points("a2", "ana", 50),
                created("b1", "bob"),
                points("b2", "bob", 7),
            ]
        )
        self.container.quarantine.add(
            "createdAt is not ISO-8601",
            {"x-jericommerce-event-type": "Balance changed"},
            body("a-bad", "ana", "never", **ANA),
        )
        self.project()

    def test_bodies_are_encrypted_at_rest_and_read_back(self) -> None:
        self.seed()
        for state in self.raw_states():
            assert ANA["email"].encode() not in state
            assert b"Zubizarretaxyz" not in state
        events = self.container.events.read(0, 10)
        assert [e.id for e in events] == ["a1", "a2", "b1", "b2"]
        assert events[0].body["properties"]["lastName"] == "Zubizarretaxyz"
        assert self.reads.get("ana").email == ANA["email"]
        (quarantined,) = list(self.container.quarantine)
        assert quarantined.body == body("a-bad", "ana", "never", **ANA)

    def test_erasure_removes_the_customer_and_leaves_others_unchanged(self) -> None:
        self.seed()
        bob = self.reads.get("bob")
        self.erase("ana")
        with pytest.raises(NotFound):
            self.reads.get("ana")
        with pytest.raises(NotFound):
            self.reads.lookup(ANA["email"])
        listed, _ = self.reads.list_answers(after="", limit=100, tier=None)
        assert [pb.Customer.FromString(a).customer_id for a in listed] == ["bob"]
        assert self.container.models.history("ana", after=0, limit=10) == []
        assert self.reads.get("bob") == bob
        events = self.container.events.read(0, 10)
        ana = [e for e in events if e.customer_id == "ana" and not e.is_erasure]
        assert [e.id for e in ana] == ["a1", "a2"]
        assert all(e.redacted and e.raw == b"" and e.body == {} for e in ana)
        assert [e.customer_id for e in events if e.is_erasure] == ["ana"]
        assert [q.customer_id for q in self.container.quarantine] == []
        (audit,) = self.container.events.keyring.erasures()
        assert audit[0] == "ana" and audit[2] == 2

    def test_erasing_again_or_an_unknown_id_is_ok_and_audited(self) -> None:
        self.seed()
        first = self.privacy.erase("ana")
        self.project()
        self.privacy.finish(first)
        again = self.privacy.erase("ana")
        unknown = self.privacy.erase("nobody")
        assert first.erased and first.position > 0
        assert not again.erased and again.position == 0
        assert not unknown.erased and unknown.position == 0
        audit = self.container.events.keyring.erasures()
        assert [a[0] for a in audit] == ["ana", "ana", "nobody"]

    def test_redelivery_after_erasure_stores_nothing_personal(self) -> None:
        self.seed()
        self.erase("ana")
        answers = self.container.events.append(
            [created("a1", "ana"), created("a-late", "ana")]
        )
        assert [a.status for a in answers] == ["duplicate", "accepted"]
        self.project()
        with pytest.raises(NotFound):
            self.reads.get("ana")
        (late,) = self.container.events.read_positions([answers[1].position])
        assert late.redacted and late.raw == b""
        for state in self.raw_states():
            assert ANA["email"].encode() not in state

    def test_an_event_created_after_the_erasure_starts_a_new_record(self) -> None:
        self.seed()
        self.erase("ana")
        later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        self.container.events.append([points("a9", "ana", 3, later)])
        self.project()
        ana = self.reads.get("ana")
        assert ana.points_balance == 3 and ana.event_count == 1
        assert ana.first_name is None

    def test_a_rebuild_does_not_bring_an_erased_customer_back(self) -> None:
        self.seed()
        bob = self.reads.get("bob")
        self.erase("ana")
        rebuild(self.container.events, self.container.models)
        with pytest.raises(NotFound):
            self.reads.get("ana")
        assert self.reads.get("bob") == bob

    def test_an_erasure_in_a_rebuilds_range_is_applied_by_the_rebuild(self) -> None:
        # The live worker has not seen the erasure's record yet: only the
        # record, in log order, removes the customer from the new generation.
        self.seed()
        self.privacy.erase("ana")
        rebuild(self.container.events, self.container.models)
        with pytest.raises(NotFound):
            self.reads.get("ana")

    def test_export_holds_the_model_every_event_and_quarantined_requests(
        self,
    ) -> None:
        self.seed()
        export = self.privacy.export("ana")
        assert export.customer.email == ANA["email"]
        assert [e.id for e in export.events] == ["a1", "a2"]
        assert (
            json.loads(export.events[0].raw)["properties"]["phoneNumber"]
            == (ANA["phoneNumber"])
        )
        assert len(export.quarantined) == 1
        self.erase("ana")
        with pytest.raises(NotFound):
            self.privacy.export("ana")

    def test_master_key_rotation_rewraps_every_data_key(self, tmp_path: Path) -> None:
        self.seed()
        new_file = tmp_path / "new.key"
        new = write_new_master_key(new_file)
        keyring = self.container.events.keyring
        old = keyring.master
        rotated = keyring.rotate_master(new, self.container.quarantine.reseal_master)
        assert rotated == 2
        self.container.close()
        with pytest.raises(WrongMasterKey):
            self.reopen(master_file=self.old_key_file)
        self.reopen(master_file=new_file)
        assert self.reads.get("ana").email == ANA["email"]
        assert self.container.events.read(0, 10)[0].body["properties"]["firstName"]
        (quarantined,) = list(self.container.quarantine)
        assert quarantined.body.startswith(b"{")
        assert old.id != new.id

    def test_a_process_left_on_the_old_master_key_creates_no_keys(
        self, tmp_path: Path
    ) -> None:
        self.seed()
        stale = build(self.settings)  # another process, started before rotation
        try:
            new = write_new_master_key(tmp_path / "new.key")
            keyring = self.container.events.keyring
            keyring.rotate_master(new, self.container.quarantine.reseal_master)
            # 503 for the sender (it retries), and why in the cause.
            with pytest.raises(StoreUnavailable) as refused:
                stale.events.append([created("z1", "zed")])
            assert isinstance(refused.value.__cause__, WrongMasterKey)
            # The current process goes on, new customers included.
            self.container.events.append([created("z1", "zed")])
            self.project()
            assert self.reads.get("zed").first_name == "Bob"
        finally:
            stale.close()

    def test_a_reader_in_another_process_stops_decrypting_after_an_erasure(
        self,
    ) -> None:
        self.seed()
        reader = build(self.settings)  # another process, keys cached by reads
        try:
            assert not reader.events.read(0, 10)[0].redacted
            self.erase("ana")
            events = [e for e in reader.events.read(0, 10) if e.customer_id == "ana"]
            assert events and all(e.redacted or e.is_erasure for e in events)
            assert not reader.events.read(0, 10)[2].redacted  # bob still reads
        finally:
            reader.close()

    def test_two_writers_making_the_same_new_customers_key_agree(self) -> None:
        other = build(self.settings)  # another process on the same store
        try:
            customers = [f"new-{i}" for i in range(20)]
            barrier = threading.Barrier(2)
            errors: list[BaseException] = []

            def write(store: Container, tag: str) -> None:
                try:
                    barrier.wait()
                    for cid in customers:
                        store.events.append([points(f"{tag}-{cid}", cid, 1)])
                except BaseException as e:  # reported below
                    errors.append(e)

            threads = [
                threading.Thread(target=write, args=(c, tag))
                for c, tag in ((self.container, "x"), (other, "y"))
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert errors == []
            events = self.container.events.read(0, 100)
            assert len(events) == 40
            assert all(not e.redacted and e.body["properties"] for e in events)
        finally:
            other.close()

    def test_rows_from_before_encryption_are_read_then_encrypted(self) -> None:
        plain = [created("p1", "ana"), points("p2", "bob", 4)]
        received = datetime.now(UTC)
        states = [legacy_state(env, received) for env in plain]
        self.container.events.recorder.insert_events(states)
        events = self.container.events.read(0, 10)
        assert events[0].body["properties"]["lastName"] == "Zubizarretaxyz"
        assert any(ANA["email"].encode() in s for s in self.raw_states())
        assert self.container.events.legacy.count() == 2
        assert self.container.events.legacy.encrypt_all() == 2
        assert self.container.events.legacy.count() == 0
        assert not any(ANA["email"].encode() in s for s in self.raw_states())
        again = self.container.events.read(0, 10)
        assert [e.raw for e in again] == [e.raw for e in events]
        self.project()
        self.erase("ana")
        assert self.container.events.read(0, 1)[0].redacted

    def test_quarantine_purge_after_retention(self) -> None:
        self.seed()
        assert self.container.quarantine.purge(datetime.now(UTC) - timedelta(1)) == 0
        assert self.container.quarantine.purge(datetime.now(UTC) + timedelta(1)) == 1
        assert list(self.container.quarantine) == []

    def test_a_different_master_key_is_refused_at_start(self, tmp_path: Path) -> None:
        self.container.close()
        other = tmp_path / "other.key"
        write_new_master_key(other)
        with pytest.raises(WrongMasterKey):
            self.reopen(master_file=other)
        self.reopen(master_file=self.old_key_file)

    # -- backend plumbing --------------------------------------------------------

    old_key_file: Path

    def reopen(self, *, master_file: Path) -> None:
        raise NotImplementedError


class TestSqlitePrivacy(PrivacyContract):
    @pytest.fixture(autouse=True)
    def _container(self, tmp_path: Path) -> Iterator[None]:
        self.data_dir = tmp_path / "data"
        self.settings = Settings.from_environ(
            {"DATA_DIR": str(self.data_dir)}, require_secret=False
        )
        self.container = build(self.settings)
        self.old_key_file = self.data_dir / "master.key"
        yield
        self.container.close()

    def reopen(self, *, master_file: Path) -> None:
        self.settings = Settings.from_environ(
            {"DATA_DIR": str(self.data_dir), "MASTER_KEY_FILE": str(master_file)},
            require_secret=False,
        )
        self.container = build(self.settings)

    def raw_states(self) -> list[bytes]:
        with sqlite3.connect(self.data_dir / "events.sqlite") as c:
            return [bytes(r[0]) for r in c.execute("SELECT state FROM stored_events")]

    def test_no_file_holds_the_erased_customers_data(self) -> None:
        self.seed()
        self.erase("ana")
        secrets = [v.encode() for v in ANA.values()] + [b"Anapersonal"]
        for path in self.data_dir.iterdir():
            data = path.read_bytes()
            for secret in secrets:
                assert secret not in data, f"{secret!r} in {path.name}"
        assert read_master_key(self.old_key_file).id == (
            self.container.events.keyring.master.id
        )

    def test_the_erasure_record_is_not_a_webhook_topic(self) -> None:
        assert ERASURE_TOPIC not in {topic_for(None)}
        self.seed()
        self.erase("ana")
        with sqlite3.connect(self.data_dir / "events.sqlite") as c:
            topics = [r[0] for r in c.execute("SELECT topic FROM stored_events")]
        assert topics.count(ERASURE_TOPIC) == 1


@pytest.mark.postgres
class TestPostgresPrivacy(PrivacyContract):
    @pytest.fixture(autouse=True)
    def _container(self, pg_url: str) -> Iterator[None]:
        self.pg_url = pg_url
        self.old_key_file = master_key_file()
        self.reopen(master_file=self.old_key_file)
        yield
        self.container.close()

    def reopen(self, *, master_file: Path) -> None:
        self.settings = Settings.from_environ(
            {"DATABASE_URL": self.pg_url, "MASTER_KEY_FILE": str(master_file)},
            require_secret=False,
        )
        self.container = build(self.settings)

    def raw_states(self) -> list[bytes]:
        import psycopg

        from service.backends.postgres.store import conninfo, library_env

        env = library_env(self.pg_url)
        with psycopg.connect(conninfo(env)) as c:
            rows = c.execute(
                f'SELECT state FROM "{env["POSTGRES_SCHEMA"]}".stored_events'
            ).fetchall()
        return [bytes(r[0]) for r in rows]

    def test_postgres_refuses_to_start_without_a_master_key(self) -> None:
        from service.config import ConfigError

        settings = Settings.from_environ(
            {"DATABASE_URL": self.pg_url}, require_secret=False
        )
        with pytest.raises(ConfigError, match="MASTER_KEY_FILE"):
            build(settings)


def test_encode_redacts_an_event_created_before_its_customers_erasure() -> None:
    from service.keyring import CustomerKey

    env = created("x1", "ana")
    erased = CustomerKey(None, None, env.created_at + timedelta(seconds=1))
    stored = sealed(env, datetime.now(UTC), erased)[1]
    from service.storedheader import decode_header

    header, _aad, body = decode_header(stored.state)
    assert header.key_id == "" and body == b""
    assert ANA["email"].encode() not in stored.state
