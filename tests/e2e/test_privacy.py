"""Erasure and export as an operator and another team use them: signed
webhooks in, PrivacyService and the CLI, then the data directory read byte
by byte, a restart, a rebuild, re-deliveries and a SIGKILL mid-erasure."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import pytest
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc
from jericommerce.loyalty.v1 import event_service_pb2 as epb
from jericommerce.loyalty.v1 import event_service_pb2_grpc as egrpc
from jericommerce.loyalty.v1 import privacy_service_pb2 as ppb
from jericommerce.loyalty.v1 import privacy_service_pb2_grpc as pgrpc

from testkit.launch import ROOT, ServiceProcess
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH

pytestmark = pytest.mark.slow

PATH = WEBHOOK_PATH


def person(cid: str) -> dict[str, str]:
    """Personal data unique to one customer, easy to grep for."""
    return {
        "email": f"{cid}.mail@example.com",
        "firstName": f"First{cid}zq",
        "lastName": f"Last{cid}zq",
        "phoneNumber": f"+3460{abs(hash(cid)) % 10**7:07d}",
    }


def webhooks(
    cid: str, created: str = "2026-03-08T12:00:00Z"
) -> list[tuple[bytes, str]]:
    p = person(cid)
    return [
        (
            json.dumps(
                {
                    "id": f"{cid}-created",
                    "customerId": cid,
                    "email": p["email"],
                    "createdAt": created,
                    "properties": p,
                }
            ).encode(),
            "Customer created",
        ),
        (
            json.dumps(
                {
                    "id": f"{cid}-points",
                    "customerId": cid,
                    "email": p["email"],
                    "createdAt": created,
                    "properties": {"amount": 40, "reference": "o-1"},
                }
            ).encode(),
            "Balance changed",
        ),
        # Signed but invalid: quarantined, and names the customer.
        (
            json.dumps(
                {"id": f"{cid}-bad", "customerId": cid, "email": p["email"]}
            ).encode(),
            "Balance changed",
        ),
    ]


def post(svc: ServiceProcess, body: bytes, kind: str) -> httpx.Response:
    return httpx.post(svc.url + PATH, content=body, headers=headers(body, kind))


def send(svc: ServiceProcess, cid: str) -> int:
    position = 0
    for body, kind in webhooks(cid):
        answer = post(svc, body, kind)
        assert answer.status_code in (200, 400), answer.text
        if answer.status_code == 200:
            position = max(position, answer.json()["position"])
    return position


def secrets(cid: str) -> list[bytes]:
    return [v.encode() for v in person(cid).values()]


def files_holding(data_dir: Path, needles: list[bytes]) -> list[str]:
    found = []
    for path in sorted(data_dir.rglob("*")):
        if path.is_file() and not path.name.endswith(".log"):
            data = path.read_bytes()
            found += [f"{path.name}: {n!r}" for n in needles if n in data]
    return found


def get(channel: grpc.Channel, cid: str, min_position: int = 0) -> cpb.Customer:
    return cgrpc.CustomerServiceStub(channel).GetCustomer(
        cpb.GetCustomerRequest(customer_id=cid, min_position=min_position), timeout=10
    )


def code(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()  # type: ignore[operator]
    return info.value.code()  # type: ignore[attr-defined,no-any-return]


def stream(channel: grpc.Channel) -> list[epb.StreamEventsResponse]:
    return list(
        egrpc.EventServiceStub(channel).StreamEvents(
            epb.StreamEventsRequest(after_position=0), timeout=10
        )
    )


def test_erasure_end_to_end_over_grpc(tmp_path: Path) -> None:
    data = tmp_path / "data"
    svc = ServiceProcess(data).start()
    try:
        send(svc, "ana")
        head = send(svc, "bob")
        with grpc.insecure_channel(svc.grpc_target) as ch:
            privacy = pgrpc.PrivacyServiceStub(ch)
            bob = get(ch, "bob", head)
            ana_now = get(ch, "ana", head)
            assert ana_now.email == person("ana")["email"]
            # Nothing personal in the event log or quarantine at rest (the
            # read models hold it in clear until the erasure).
            held = files_holding(data, secrets("ana"))
            assert held and not [f for f in held if f.startswith("events")], held

            export = list(
                privacy.ExportCustomer(
                    ppb.ExportCustomerRequest(customer_id="ana"), timeout=10
                )
            )
            # The export's customer is the message GetCustomer answers.
            assert export[0].customer == ana_now
            assert export[0].customer.last_name == "Lastanazq"
            assert [e.event.id for e in export[1:]] == ["ana-created", "ana-points"]
            assert json.loads(export[1].event.raw_json)["properties"] == person("ana")

            erased = privacy.EraseCustomer(
                ppb.EraseCustomerRequest(customer_id="ana"), timeout=30
            )
            assert erased.erased and erased.events == 2 and erased.position > head

            stub = cgrpc.CustomerServiceStub(ch)
            assert code(lambda: get(ch, "ana")) == grpc.StatusCode.NOT_FOUND
            lookup = cpb.LookupCustomerRequest(email=person("ana")["email"])
            assert (
                code(lambda: stub.LookupCustomer(lookup, timeout=5))
                == grpc.StatusCode.NOT_FOUND
            )
            listed = stub.ListCustomers(
                cpb.ListCustomersRequest(page_size=10), timeout=5
            )
            assert [c.customer_id for c in listed.customers] == ["bob"]
            assert get(ch, "bob") == bob
            history = cpb.ListCustomerEventsRequest(customer_id="ana")
            assert (
                code(lambda: stub.ListCustomerEvents(history, timeout=5))
                == grpc.StatusCode.NOT_FOUND
            )
            export_again = ppb.ExportCustomerRequest(customer_id="ana")
            assert (
                code(lambda: list(privacy.ExportCustomer(export_again, timeout=5)))
                == grpc.StatusCode.NOT_FOUND
            )

            items = stream(ch)
            ana = [i.event for i in items if i.event.customer_id == "ana"]
            assert [e.id for e in ana] == ["ana-created", "ana-points"]
            assert all(e.redacted and not e.raw_json and not e.email for e in ana)
            (marker,) = [
                i.customer_erased for i in items if i.HasField("customer_erased")
            ]
            assert marker.customer_id == "ana" and marker.position == erased.position
            assert b"mail@example.com" not in b"".join(
                i.event.raw_json.encode() for i in items if i.event.customer_id == "ana"
            )
            assert files_holding(data, secrets("ana")) == []

            # Idempotent; an empty id is refused.
            again = privacy.EraseCustomer(
                ppb.EraseCustomerRequest(customer_id="ana"), timeout=30
            )
            assert not again.erased and again.position == 0
            empty = ppb.EraseCustomerRequest(customer_id="")
            assert (
                code(lambda: privacy.EraseCustomer(empty, timeout=5))
                == grpc.StatusCode.INVALID_ARGUMENT
            )

        # JeriCommerce retries the old webhooks (and the invalid one).
        for body, kind in webhooks("ana"):
            assert post(svc, body, kind).status_code in (200, 400)
        late = webhooks("ana")[0][0].replace(b"ana-created", b"ana-late")
        assert post(svc, late, "Customer created").status_code == 200
        time.sleep(0.5)
        assert svc.cli("erasures", "--json").count('"customer_id": "ana"') == 2
    finally:
        svc.stop()
    assert files_holding(data, secrets("ana")) == []

    # A restart and a rebuild bring nothing back.
    svc = ServiceProcess(data).start()
    try:
        svc.cli("rebuild")
        with grpc.insecure_channel(svc.grpc_target) as ch:
            assert code(lambda: get(ch, "ana")) == grpc.StatusCode.NOT_FOUND
            assert get(ch, "bob").last_name == "Lastbobzq"
            # An event created after the erasure starts a new record.
            body = json.dumps(
                {
                    "id": "ana-new",
                    "customerId": "ana",
                    "createdAt": "2099-01-01T00:00:00Z",
                    "properties": {"amount": 5},
                }
            ).encode()
            position = post(svc, body, "Balance changed").json()["position"]
            fresh = get(ch, "ana", position)
            assert fresh.points_balance == 5 and fresh.event_count == 1
            assert not fresh.email and not fresh.last_name
    finally:
        svc.stop()
    assert files_holding(data, secrets("ana")) == []


def test_cli_export_and_erase(tmp_path: Path) -> None:
    with ServiceProcess(tmp_path / "data") as svc:
        head = send(svc, "cli1")
        out = tmp_path / "export.json"
        with grpc.insecure_channel(svc.grpc_target) as ch:
            get(ch, "cli1", head)
            svc.cli("export", "cli1", "--out", str(out))
            document = json.loads(out.read_text())
            assert document["read_model"]["last_name"] == "Lastcli1zq"
            assert [e["id"] for e in document["events"]] == [
                "cli1-created",
                "cli1-points",
            ]
            assert document["events"][0]["body"]["properties"] == person("cli1")
            assert len(document["quarantined_requests"]) == 1
            assert out.stat().st_mode & 0o777 == 0o600

            result = json.loads(svc.cli("erase", "cli1", "--yes"))
            assert result["erased"] is True and result["events"] == 2
            assert code(lambda: get(ch, "cli1")) == grpc.StatusCode.NOT_FOUND
            missing = subprocess.run(
                [sys.executable, "-m", "service", "export", "cli1"],
                env=svc.env,
                cwd=ROOT,
                capture_output=True,
            )
            assert missing.returncode == 1
        assert files_holding(svc.data_dir, secrets("cli1")) == []


def test_sigkill_mid_erasure_leaves_each_customer_whole_or_erased(
    tmp_path: Path,
) -> None:
    customers = [f"k{i}" for i in range(10)]
    data = tmp_path / "data"
    with ServiceProcess(data) as svc:
        head = max(send(svc, cid) for cid in customers)
        with grpc.insecure_channel(svc.grpc_target) as ch:
            get(ch, customers[-1], head)
        # How long a whole `loyalty erase` takes here, start-up included:
        # the kills below land before, during and after the transaction.
        send(svc, "timing")
        started = time.monotonic()
        svc.cli("erase", "timing", "--yes")
        whole = time.monotonic() - started
        for i, cid in enumerate(customers):
            eraser = subprocess.Popen(
                [sys.executable, "-m", "service", "erase", cid, "--yes"],
                env=svc.env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            # Evenly from start-up to the end: before, in and after the commit.
            time.sleep(whole * (0.1 + 0.8 * i / (len(customers) - 1)))
            eraser.send_signal(signal.SIGKILL)
            eraser.wait(10)
    # After a restart the worker has caught up with whatever committed.
    with ServiceProcess(data) as svc:
        time.sleep(1.0)
        audited = {
            json.loads(line)["customer_id"]
            for line in svc.cli("erasures", "--json").splitlines()
        } - {"timing"}
        with grpc.insecure_channel(svc.grpc_target) as ch:
            items = stream(ch)
            for cid in customers:
                events = [i.event for i in items if i.event.customer_id == cid]
                erased_record = any(i.customer_erased.customer_id == cid for i in items)
                redacted = {e.redacted for e in events}
                if cid in audited:
                    assert erased_record and redacted == {True}, cid
                    assert code(lambda c=cid: get(ch, c)) == grpc.StatusCode.NOT_FOUND
                else:
                    assert not erased_record and redacted == {False}, cid
                    assert get(ch, cid).last_name == f"Last{cid}zq"
        print(f"erasures committed before the kill: {len(audited)} of {len(customers)}")
        assert 0 < len(audited) < len(customers), "the kills missed the erasures"


@pytest.mark.postgres
def test_erasure_on_postgres(pg_url: str, tmp_path: Path) -> None:
    with ServiceProcess(tmp_path / "pg", DATABASE_URL=pg_url) as svc:
        send(svc, "pga")
        head = send(svc, "pgb")
        with grpc.insecure_channel(svc.grpc_target) as ch:
            get(ch, "pgb", head)
            erased = pgrpc.PrivacyServiceStub(ch).EraseCustomer(
                ppb.EraseCustomerRequest(customer_id="pga"), timeout=30
            )
            assert erased.erased and erased.events == 2
            assert code(lambda: get(ch, "pga")) == grpc.StatusCode.NOT_FOUND
            assert get(ch, "pgb").last_name == "Lastpgbzq"
            items = stream(ch)
            pga = [i.event for i in items if i.event.customer_id == "pga"]
            assert pga and all(e.redacted and not e.raw_json for e in pga)
        # The CLI, as an operator runs it beside the service.
        assert json.loads(svc.cli("erase", "pgb", "--yes"))["events"] == 2
        svc.cli("rebuild")
        with grpc.insecure_channel(svc.grpc_target) as ch:
            assert code(lambda: get(ch, "pga")) == grpc.StatusCode.NOT_FOUND
            assert code(lambda: get(ch, "pgb")) == grpc.StatusCode.NOT_FOUND
        audit = [
            json.loads(line) for line in svc.cli("erasures", "--json").splitlines()
        ]
        assert [a["customer_id"] for a in audit] == ["pga", "pgb"]


def test_master_key_rotation_from_the_cli(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with ServiceProcess(data) as svc:
        head = send(svc, "rot")
        with grpc.insecure_channel(svc.grpc_target) as ch:
            get(ch, "rot", head)
    new_key = tmp_path / "keys" / "master-2.key"
    new_key.parent.mkdir()  # rotate-master makes the file, never directories
    out = svc.cli("keys", "rotate-master", "--new-key-file", str(new_key))
    assert "re-wrapped 1 data key(s)" in out
    assert new_key.stat().st_mode & 0o777 == 0o600
    # The old key (DATA_DIR/master.key, the default) no longer opens the store.
    refused = subprocess.run(
        [sys.executable, "-m", "service", "keys", "status"],
        env=svc.env,
        cwd=ROOT,
        capture_output=True,
    )
    assert refused.returncode == 2
    assert b"MASTER_KEY_FILE" in refused.stderr
    with ServiceProcess(data, MASTER_KEY_FILE=str(new_key)) as svc:
        with grpc.insecure_channel(svc.grpc_target) as ch:
            assert get(ch, "rot").last_name == "Lastrotzq"
        export = json.loads(svc.cli("export", "rot"))
        assert export["events"][0]["body"]["properties"] == person("rot")
