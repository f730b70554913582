"""`loyalty keys rotate-master` on a Friday afternoon: while senders keep
posting webhooks, the rotation completes (it takes the write lock before it
reads, and tries again while the store is busy); after a restart with the
new key every stored event decrypts. A rotation that gives up changes
nothing and leaves no key file behind."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from service.bootstrap import build
from service.config import Settings
from service.ingest import parse_envelope
from testkit.launch import ROOT, ServiceProcess
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH

pytestmark = pytest.mark.slow
CUSTOMERS = 3000


def created(cid: str) -> bytes:
    return json.dumps(
        {
            "id": f"{cid}-created",
            "customerId": cid,
            "email": f"{cid}@example.com",
            "createdAt": "2026-03-08T12:00:00Z",
            "properties": {"firstName": f"First{cid}"},
        }
    ).encode()


def seed(env: dict[str, str]) -> int:
    """Many customers, each with a data key, written straight to the store."""
    c = build(Settings.from_environ(env, require_secret=False))
    try:
        envelopes = [
            parse_envelope(created(f"c{i}"), "Customer created")
            for i in range(CUSTOMERS)
        ]
        for i in range(0, CUSTOMERS, 500):
            c.events.append(envelopes[i : i + 500])
        return c.events.head()
    finally:
        c.close()


class Traffic:
    """Senders posting points for known customers (and now and then a new
    one) until stopped."""

    def __init__(self, svc: ServiceProcess, senders: int = 3) -> None:
        self.svc = svc
        self.accepted = 0
        self.codes: dict[int, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._send, args=(n,)) for n in range(senders)
        ]

    def _send(self, n: int) -> None:
        rnd = random.Random(n)
        with httpx.Client(base_url=self.svc.url, timeout=30) as client:
            i = 0
            while not self._stop.is_set():
                i += 1
                cid = f"c{rnd.randrange(CUSTOMERS)}" if i % 20 else f"new-{n}-{i}"
                body = json.dumps(
                    {
                        "id": f"s{n}-{i}",
                        "customerId": cid,
                        "createdAt": "2026-03-09T12:00:00Z",
                        "properties": {"amount": 1, "reference": f"s{n}-{i}"},
                    }
                ).encode()
                answer = client.post(
                    WEBHOOK_PATH, content=body, headers=headers(body, "Balance changed")
                )
                with self._lock:
                    self.codes[answer.status_code] = (
                        self.codes.get(answer.status_code, 0) + 1
                    )
                    self.accepted += answer.status_code == 200

    def __enter__(self) -> Traffic:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)


def rotate_during_traffic(tmp_path: Path, env: dict[str, str]) -> None:
    seeded = seed(env)
    new_key = tmp_path / "keys" / "new.key"
    new_key.parent.mkdir()
    svc = ServiceProcess(Path(env.get("DATA_DIR", tmp_path / "data")), **env)
    with svc:
        with Traffic(svc) as traffic:
            time.sleep(1.0)
            before = traffic.accepted
            out = subprocess.run(
                [sys.executable, "-m", "service", "keys", "rotate-master",
                 "--new-key-file", str(new_key)],
                env=svc.env, cwd=ROOT, capture_output=True, timeout=180,
            )  # fmt: skip
            time.sleep(0.5)
        assert out.returncode == 0, out.stderr.decode()[-2000:]
        assert "re-wrapped" in out.stdout.decode()
        assert traffic.accepted > before, "no traffic during the rotation"
        # A process left on the old key refuses only what needs a new data key.
        assert set(traffic.codes) <= {200, 503}, traffic.codes
    after = build(
        Settings.from_environ(
            {**env, "MASTER_KEY_FILE": str(new_key)}, require_secret=False
        )
    )
    try:
        events = after.events.read(0, 1_000_000)
        assert len(events) == seeded + traffic.accepted
        unreadable = [e.position for e in events if e.redacted or not e.body]
        assert unreadable == []
    finally:
        after.close()


def test_sqlite_rotation_completes_under_traffic(tmp_path: Path) -> None:
    rotate_during_traffic(tmp_path, {"DATA_DIR": str(tmp_path / "data")})


@pytest.mark.postgres
def test_postgres_rotation_completes_under_traffic(tmp_path: Path, pg_url: str) -> None:
    from testkit.keys import master_key_file

    key = tmp_path / "master.key"
    key.write_bytes(master_key_file().read_bytes())
    key.chmod(0o600)
    env = {"DATABASE_URL": pg_url, "MASTER_KEY_FILE": str(key)}
    rotate_during_traffic(tmp_path, env)


def test_a_rotation_that_gives_up_changes_nothing_and_leaves_no_key_file(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    env = {"DATA_DIR": str(data)}
    seed(env)
    new_key = tmp_path / "new.key"
    holder = sqlite3.connect(data / "events.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a writer that never lets go
    try:
        out = subprocess.run(
            [sys.executable, "-m", "service", "keys", "rotate-master",
             "--new-key-file", str(new_key), "--wait", "1"],
            env={**ServiceProcess(data).env}, cwd=ROOT, capture_output=True,
            timeout=120,
        )  # fmt: skip
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert out.returncode != 0
    assert not new_key.exists()
    status = subprocess.run(
        [sys.executable, "-m", "service", "keys", "status", "--json"],
        env={**ServiceProcess(data).env}, cwd=ROOT, capture_output=True, timeout=60,
        check=True,
    )  # fmt: skip
    before = json.loads(status.stdout)["master_key_id"]
    c = build(Settings.from_environ(env, require_secret=False))
    try:
        assert c.events.keyring.master.id == before
        assert not c.events.read(0, 1)[0].redacted
    finally:
        c.close()
