"""A signed but invalid body quarantined after its customer's erasure keeps
no personal data: JeriCommerce retries non-2xx answers, so a body refused
before the erasure arrives again after it. Read the way an operator reads
it (`loyalty quarantine show`) and, on SQLite, in the files' bytes; on
PostgreSQL in the table's bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from projections.worker import ProjectionWorker
from service.bootstrap import Container, build
from service.config import Settings
from testkit.keys import master_key_file
from testkit.launch import ROOT
from testkit.privacy import ANA, body, created

HEADERS = {"x-jericommerce-event-type": "Balance changed"}
SECRETS = [v.encode() for v in ANA.values()]


class QuarantineAfterErasure:
    container: Container
    env: dict[str, str]

    def erase_ana(self) -> None:
        c = self.container
        c.events.append([created("a1", "ana")])
        c.quarantine.add("createdAt is not ISO-8601", HEADERS, self.bad("a-bad"))
        ProjectionWorker(c.events, c.models).run_once()
        privacy = c.privacy()
        erasure = privacy.erase("ana")
        ProjectionWorker(c.events, c.models).run_once()
        privacy.finish(erasure)
        assert list(c.quarantine) == []

    @staticmethod
    def bad(event_id: str, when: str = "yesterday") -> bytes:
        return body(event_id, "ana", when, **ANA)

    def show(self, request_id: int) -> str:
        """`loyalty quarantine show ID`'s output, as an operator sees it."""
        out = subprocess.run(
            [sys.executable, "-m", "service", "quarantine", "show", str(request_id)],
            env={**os.environ, **self.env},
            cwd=ROOT,
            capture_output=True,
            timeout=60,
            check=True,
        )
        return out.stdout.decode()

    def stored_bytes(self) -> bytes:
        raise NotImplementedError

    def test_a_retried_body_is_kept_as_its_ids_only(self) -> None:
        self.erase_ana()
        again = self.container.quarantine.add(
            "createdAt is not ISO-8601", HEADERS, self.bad("a-bad")
        )
        (item,) = list(self.container.quarantine)
        assert json.loads(item.body) == {"id": "a-bad", "customerId": "ana"}
        assert item.reason == "createdAt is not ISO-8601"
        assert item.resolution and "erased" in item.resolution
        shown = self.show(again)
        assert "a-bad" in shown and "createdAt is not ISO-8601" in shown
        for secret in SECRETS:
            assert secret.decode() not in shown
            assert secret not in self.stored_bytes()

    def test_a_body_created_before_the_erasure_is_redacted_too(self) -> None:
        self.erase_ana()
        before = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        no_id = json.loads(self.bad("x", before))
        del no_id["id"]  # invalid for another reason, its time readable
        self.container.quarantine.add(
            "id is missing", HEADERS, json.dumps(no_id).encode()
        )
        (item,) = list(self.container.quarantine)
        assert json.loads(item.body) == {"customerId": "ana"}
        for secret in SECRETS:
            assert secret not in self.stored_bytes()

    def test_a_body_created_after_the_erasure_belongs_to_the_new_record(
        self,
    ) -> None:
        self.erase_ana()
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        new = json.loads(self.bad("a-new", later))
        new["properties"] = "not an object"
        raw = json.dumps(new).encode()
        self.container.quarantine.add("properties is not an object", HEADERS, raw)
        (item,) = list(self.container.quarantine)
        assert item.body == raw and item.resolution is None
        assert ANA["email"].encode() not in self.stored_bytes()  # sealed
        # ...and a second erasure removes it.
        self.container.privacy().erase("ana")
        assert list(self.container.quarantine) == []


class TestSqlite(QuarantineAfterErasure):
    @pytest.fixture(autouse=True)
    def _container(self, tmp_path: Path) -> Iterator[None]:
        self.data_dir = tmp_path / "data"
        self.env = {"DATA_DIR": str(self.data_dir)}
        self.container = build(Settings.from_environ(self.env, require_secret=False))
        yield
        self.container.close()

    def stored_bytes(self) -> bytes:
        return b"".join(
            p.read_bytes() for p in sorted(self.data_dir.rglob("*")) if p.is_file()
        )


@pytest.mark.postgres
class TestPostgres(QuarantineAfterErasure):
    @pytest.fixture(autouse=True)
    def _container(self, pg_url: str) -> Iterator[None]:
        self.env = {"DATABASE_URL": pg_url, "MASTER_KEY_FILE": str(master_key_file())}
        self.container = build(Settings.from_environ(self.env, require_secret=False))
        yield
        self.container.close()

    def stored_bytes(self) -> bytes:
        q = self.container.quarantine
        with q._transaction(commit=False) as c:
            c.execute(f"SELECT body, headers, reason FROM {q.table}")
            rows = c.fetchall()
        return b"".join(
            bytes(r["body"]) + r["headers"].encode() + r["reason"].encode()
            for r in rows
        )
