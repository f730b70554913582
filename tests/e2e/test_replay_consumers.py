"""The replay consumers of clients/ (TypeScript, Go, Java, C++) against
the real service: a replay of 25,000 events, each consumer SIGKILLed twice on
the way and restarted, ends with the figures computed independently in Python
from the stored bodies; exact decimals survive; erasure, redacted, unknown
and unreadable events are handled; a filtered consumer resumes from its
checkpoint instead of rescanning."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from jericommerce.loyalty.v1 import event_pb2
from jericommerce.loyalty.v1 import privacy_service_pb2 as ppb
from jericommerce.loyalty.v1 import privacy_service_pb2_grpc as pgrpc

from testkit.clients import LANGUAGES, build_clients, program
from testkit.consumers import Consumer, as_json, expected_rows, load_store, totals
from testkit.launch import ServiceProcess
from testkit.signing import headers
from testkit.traffic import customer_id
from testkit.webhooks import WEBHOOK_PATH

pytestmark = pytest.mark.slow

CONSUMERS = LANGUAGES
EVENTS = 25_000
QUIET_TAIL = 5_000  # the last events hold no `Reward refunded`
REFUNDED = event_pb2.EVENT_TYPE_REWARD_REFUNDED
ERASED = customer_id(3)
BIG, TINY = "12345678901234567890", "0.000000000000000001"


class Store:
    def __init__(self, svc: ServiceProcess, http: httpx.Client) -> None:
        self.svc, self.http, self.sent = svc, http, 0
        self.later = ""  # createdAt of the erased customer's event after erasure

    def post(self, kind: str, body: str) -> int:
        """A signed webhook with this exact body text; its position."""
        raw = body.encode()
        r = self.http.post(WEBHOOK_PATH, content=raw, headers=headers(raw, kind))
        assert r.status_code == 200, r.text
        return int(r.json()["position"])

    def balance(self, customer: str, amount: str, **extra: str) -> int:
        """`Balance changed` with `amount` written as a JSON number, verbatim."""
        self.sent += 1
        base = {"id": f"extra-{self.sent}", "customerId": customer, **extra}
        base.setdefault("createdAt", "2026-02-10T12:00:00Z")
        fields = json.dumps(base)[:-1]
        return self.post(
            "Balance changed", f'{fields}, "properties": {{"amount": {amount}}}}}'
        )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One service over a loaded store, shared by the module's tests: the
    kit's traffic, then (over signed webhooks) exact numbers, an event
    without its amount, an unknown type, an erasure and a later event of the
    erased customer."""
    data_dir = tmp_path_factory.mktemp("replay")
    load_store(data_dir, EVENTS, 400, tag="replay", quiet_tail=QUIET_TAIL)
    with (
        ServiceProcess(data_dir) as svc,
        httpx.Client(base_url=svc.url, timeout=30) as http,
    ):
        s = Store(svc, http)
        exact = {"campaignId": "cmp-exact"}
        s.balance("exact-1", BIG, **exact)
        s.balance("exact-1", TINY, **exact)
        s.balance("exact-1", "-0.50", **exact)
        base = '"customerId": "exact-1", "createdAt": "2026-02-10T12:00:00Z"'
        s.post("Balance changed", f'{{"id": "no-amount", {base}, "properties": {{}}}}')
        s.post("Points expired", f'{{"id": "unknown-1", {base}, "properties": {{}}}}')
        with grpc.insecure_channel(svc.grpc_target) as channel:
            pgrpc.PrivacyServiceStub(channel).EraseCustomer(
                ppb.EraseCustomerRequest(customer_id=ERASED), timeout=30
            )
        s.later = (datetime.now(UTC) + timedelta(hours=1)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        s.balance(ERASED, "7", createdAt=s.later)
        yield s


@pytest.fixture(scope="module")
def built() -> None:
    build_clients()


def consumer(lang: str, svc: ServiceProcess, state: Path, *extra: str) -> Consumer:
    return Consumer(
        [
            *program(lang, "consumer"),
            "--target",
            svc.grpc_target,
            "--state",
            str(state),
            *extra,
        ]
    )


def saved_position(state: Path) -> int:
    return int(json.loads(state.read_text())["position"])


@pytest.mark.parametrize("lang", CONSUMERS)
def test_consumer_killed_twice_ends_with_the_independent_figures(
    lang: str, built: None, store: Store, tmp_path: Path
) -> None:
    svc, state = store.svc, tmp_path / "points.json"
    resumed_after = []
    for _ in range(2):
        with consumer(lang, svc, state, "--save-every", "500") as run:
            resumed_after.append(int(run.until("resumed")["after"]))
            while int(run.until("saved")["position"]) <= resumed_after[-1]:
                pass
            run.kill()  # SIGKILL, mid-replay
            assert "done" not in [x["step"] for x in run.seen], (
                "finished before the kill"
            )
    with consumer(lang, svc, state) as run:
        resumed_after.append(int(run.until("resumed")["after"]))
        done = run.until("done")
        assert run.close() == 0, run.stderr()

    rows, head = expected_rows(svc.grpc_target)
    # Each restart resumed after the position saved with the state it found.
    assert 0 == resumed_after[0] < resumed_after[1] < resumed_after[2] < head, (
        resumed_after
    )
    assert int(done["position"]) == head
    saved = json.loads(state.read_text())
    assert saved["position"] == str(head)
    assert saved["customers"] == as_json(rows)
    assert done["figures"] == totals(rows)

    # Numbers exact end to end: 20 digits and 18 decimals, in both directions.
    (month,) = done["figures"]["cmp-exact"].values()
    assert month["issued"] == f"{BIG}.{TINY.split('.')[1]}"
    assert month["redeemed"] == "0.5"
    # The erased customer's earlier rows are gone; the later event counts.
    assert saved["customers"][ERASED] == {
        "(none)": {
            store.later[:7]: {
                "issued": "7",
                "redeemed": "0",
                "redemptions": 0,
                "refunds": 0,
            }
        }
    }
    received = done["received"]
    assert received["erasures"] == 1, received  # this last run replayed past it
    assert received["unknown"] >= 1 and received["invalid"] >= 1, received
    assert received["redacted"] >= 1, received


def refund_positions(svc: ServiceProcess) -> list[int]:
    from jericommerce.loyalty.v1 import event_service_pb2 as epb
    from jericommerce.loyalty.v1 import event_service_pb2_grpc as egrpc

    with grpc.insecure_channel(svc.grpc_target) as channel:
        stream = egrpc.EventServiceStub(channel).StreamEvents(
            epb.StreamEventsRequest(event_types=[REFUNDED]), timeout=120
        )
        return [x.event.position for x in stream if x.WhichOneof("item") == "event"]


@pytest.mark.parametrize("lang", CONSUMERS)
def test_filtered_consumer_resumes_from_its_checkpoint(
    lang: str, built: None, store: Store, tmp_path: Path
) -> None:
    svc, state = store.svc, tmp_path / "refunds.json"
    with consumer(lang, svc, state, "--types", "REWARD_REFUNDED") as run:
        first = run.until("done")
        assert run.close() == 0, run.stderr()
    rows, head = expected_rows(svc.grpc_target, types=[REFUNDED])
    last_refund = max(refund_positions(svc))
    assert head - last_refund > QUIET_TAIL // 2  # a long quiet stretch at the end
    assert json.loads(state.read_text())["customers"] == as_json(rows)
    assert first["figures"] == totals(rows)
    # Without checkpoints its position would stay at the last refund.
    position = int(first["position"])
    assert position >= head - 1000 and position > last_refund, (
        position,
        head,
        last_refund,
    )

    # Other traffic, nothing it wants; the restart starts after its checkpoint.
    for _ in range(1500):
        store.balance("busy-1", "1")
    with consumer(lang, svc, state, "--types", "REWARD_REFUNDED") as run:
        assert int(run.until("resumed")["after"]) == position
        again = run.until("done")
        assert run.close() == 0, run.stderr()
    new_head = expected_rows(svc.grpc_target, after_position=position)[1]
    assert again["received"]["events"] == 0, again
    assert again["received"]["checkpoints"] >= 1, again
    assert int(again["position"]) >= new_head - 1000, (again, new_head)
    assert again["figures"] == first["figures"]


@pytest.mark.parametrize("lang", CONSUMERS)
def test_following_filtered_consumer_saves_checkpoints_of_live_traffic(
    lang: str, built: None, store: Store, tmp_path: Path
) -> None:
    svc, state = store.svc, tmp_path / "live.json"
    with consumer(lang, svc, state, "--types", "REWARD_REFUNDED", "--follow") as run:
        run.until("caught_up", timeout=120)
        last = max(store.balance("busy-2", "1") for _ in range(20))
        # A follow stream sends a checkpoint within a second of non-matching
        # events; the consumer saves it.
        while int(run.until("saved", timeout=10)["position"]) < last:
            pass
        run.kill()
    assert saved_position(state) >= last
    with consumer(lang, svc, state, "--types", "REWARD_REFUNDED", "--follow") as run:
        assert int(run.until("resumed")["after"]) >= last
        run.until("caught_up")
        run.proc.send_signal(signal.SIGTERM)
        done: dict[str, Any] = run.until("done")
        assert run.close() == 0, run.stderr()
    assert done["received"]["events"] == 0, done


@pytest.mark.parametrize("lang", CONSUMERS)
def test_consumer_refuses_a_state_built_with_another_filter(
    lang: str, built: None, tmp_path: Path
) -> None:
    """Resuming a REWARD_REFUNDED state unfiltered would skip every other
    event before its position: the consumer refuses, and keeps the file."""
    state = tmp_path / "refunds.json"
    text = json.dumps(
        {
            "format": 1,
            "position": "5000",
            "types": ["EVENT_TYPE_REWARD_REFUNDED"],
            "customers": {},
        }
    )
    state.write_text(text)
    done = subprocess.run(
        [*program(lang, "consumer"), "--target", "127.0.0.1:9", "--state", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert "types" in done.stderr, done.stderr
    assert state.read_text() == text


@pytest.mark.parametrize("lang", CONSUMERS)
def test_following_consumer_saves_a_lone_live_event_within_seconds(
    lang: str, built: None, store: Store, tmp_path: Path
) -> None:
    """One live event and then silence: the consumer saves it on its own
    clock (about a second), not at the next item, which may never come;
    a kill -9 after that `saved` line loses nothing."""
    svc, state = store.svc, tmp_path / "lone.json"
    start = store.balance("lone-1", "1")
    state.write_text(
        json.dumps({"format": 1, "position": str(start), "types": [], "customers": {}})
    )
    with consumer(lang, svc, state, "--follow") as run:
        assert run.until("caught_up")["head_position"] == str(start)
        last = store.balance("lone-1", "5", createdAt="2026-03-01T00:00:00Z")
        while int(run.until("saved", timeout=10)["position"]) < last:
            pass
        run.kill()
    saved = json.loads(state.read_text())
    assert saved["position"] == str(last)
    row = saved["customers"]["lone-1"]["(none)"]["2026-03"]
    assert row["issued"] == "5", saved
