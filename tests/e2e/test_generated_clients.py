"""The generated, compiled clients (TypeScript, Go, C++, Java; built by
scripts/build_clients.sh, as `make clients` does) against the real service
over mTLS: each example's output must match what the Python client reads."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc
from jericommerce.loyalty.v1 import event_pb2
from jericommerce.loyalty.v1 import event_service_pb2 as epb
from jericommerce.loyalty.v1 import event_service_pb2_grpc as egrpc

from testkit.clients import build_clients
from testkit.launch import ROOT, ServiceProcess
from testkit.signing import headers
from testkit.tls import Pki, tls_channel
from testkit.webhooks import WEBHOOK_PATH, webhook_body

pytestmark = pytest.mark.slow

CLIENTS = ROOT / "clients"
LANGUAGES = ["ts", "go", "cpp", "java"]
DEADLINE_MS = 20000
# (event type, customer suffix, body fields); each language's customers are
# LANG-a, LANG-b and LANG-c, on one service shared by the languages.
WEBHOOKS: list[tuple[str, str, dict[str, Any]]] = [
    ("Customer created", "c", {"email": "cleo@example.com"}),
    ("Customer created", "a", {"email": "ana@example.com", "firstName": "Ana"}),
    ("Balance changed", "a", {"amount": 10}),
    ("Tier changed", "a", {"current": "Gold"}),
    ("Coupon assigned", "a", {"code": "X", "header": "10% off"}),
    ("Customer scanned", "b", {}),
    ("Points expiry reminder", "b", {"days": 7}),  # no known type
]


@pytest.fixture(scope="module")
def built() -> None:
    build_clients()


def example(lang: str) -> list[str]:
    if lang == "ts":
        node = shutil.which("node")
        assert node, "node vanished after the build"
        return [node, str(CLIENTS / "ts" / "build" / "js" / "example.js")]
    return [str(CLIENTS / lang / "build" / "loyalty-example")]


@pytest.fixture(scope="module")
def service(
    pki: Pki,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServiceProcess]:
    with ServiceProcess(
        tmp_path_factory.mktemp("mtls-clients"),
        **pki.mtls_settings(),
    ) as svc:
        yield svc


def post(
    svc: ServiceProcess, event_id: str, kind: str, customer: str, **kw: Any
) -> int:
    body = webhook_body(event_id, customer, **kw)
    r = httpx.post(
        svc.url + WEBHOOK_PATH,
        content=body,
        headers=headers(body, kind),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return int(r.json()["position"])


class Example:
    """A running example program, read one JSON line at a time."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()
        self.seen: list[dict[str, Any]] = []

    def __enter__(self) -> Example:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self.pump.join(10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def until(self, step: str, timeout: float = 30) -> list[dict[str, Any]]:
        """Every line up to and including the first of `step`."""
        got: list[dict[str, Any]] = []
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"no {step!r} within {timeout}s; so far: {self.seen}")
            if line is None:
                pytest.fail(f"ended before {step!r}: {self.seen}\n{self.finish()}")
            got.append(json.loads(line))
            self.seen.append(got[-1])
            if got[-1]["step"] in (step, "error"):
                assert got[-1]["step"] == step, got[-1]
                return got

    def finish(self) -> str:
        """Waits for the exit; its stderr."""
        self.proc.wait(30)
        assert self.proc.stderr is not None
        return self.proc.stderr.read()


def tls_args(pki: Pki, svc: ServiceProcess, *, client_cert: bool = True) -> list[str]:
    args = ["--target", svc.grpc_target, "--ca", str(pki.path("ca.pem"))]
    if client_cert:
        args += [
            "--cert",
            str(pki.path("client.pem")),
            "--key",
            str(pki.path("client.key")),
        ]
    return args


def rich_error(call: Any) -> dict[str, Any]:
    """The Python side of an expected failure, in the examples' shape."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    status = rpc_status.from_call(info.value)  # type: ignore[arg-type]
    assert status is not None
    detail = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(detail)
    return {
        "code": status.code,
        "message": status.message,
        "reason": detail.reason,
        "domain": detail.domain,
        "metadata": dict(detail.metadata),
    }


def event_json(e: Any) -> dict[str, str]:
    out = {
        "position": str(e.position),
        "id": e.id,
        "type": event_pb2.EventType.Name(e.type),
        "type_name": e.type_name,
        "customer_id": e.customer_id,
    }
    if e.HasField("balance_changed"):
        out["amount"] = e.balance_changed.amount.value
    return out


@pytest.mark.parametrize("lang", LANGUAGES)
def test_example_reads_what_the_python_client_reads(
    lang: str,
    built: None,
    service: ServiceProcess,
    pki: Pki,
) -> None:
    svc = service
    positions = [
        post(svc, f"{lang}-ev-{n}", kind, f"{lang}-{suffix}", **kw)
        for n, (kind, suffix, kw) in enumerate(WEBHOOKS, start=1)
    ]
    after_position = min(positions) - 1  # the events of this language only
    with Example(
        [
            *example(lang),
            *tls_args(pki, svc),
            "--customer", f"{lang}-a",
            "--min-position", str(max(positions)),
            "--after", str(after_position),
            "--deadline-ms", str(DEADLINE_MS),
            "--live",
        ]
    ) as run:  # fmt: skip
        before = run.until("caught_up")
        live_position = post(svc, f"{lang}-live", "Customer tapped", f"{lang}-b")
        after = run.until("done")
        stderr = run.finish()
        assert run.proc.returncode == 0, stderr
    got: dict[str, Any] = {}
    for line in before + after:
        got.setdefault(line.pop("step"), []).append(line)

    with tls_channel(
        svc, pki.read("ca.pem"), pki.read("client.key"), pki.read("client.pem")
    ) as channel:
        customers = cgrpc.CustomerServiceStub(channel)
        c = customers.GetCustomer(
            cpb.GetCustomerRequest(customer_id=f"{lang}-a"), timeout=10
        )
        listed = customers.ListCustomers(
            cpb.ListCustomersRequest(page_size=1000), timeout=10
        )
        stored = list(
            egrpc.EventServiceStub(channel).StreamEvents(
                epb.StreamEventsRequest(after_position=after_position), timeout=10
            )
        )
        not_found = rich_error(
            lambda: customers.GetCustomer(
                cpb.GetCustomerRequest(customer_id="no-such-customer"), timeout=10
            )
        )
        invalid = rich_error(
            lambda: customers.GetCustomer(cpb.GetCustomerRequest(), timeout=10)
        )

    assert got["customer"] == [
        {
            "customer": {
                "customer_id": c.customer_id,
                "email": c.email,
                "first_name": c.first_name,
                "points_balance": str(c.points_balance),
                "points_balance_decimal": c.points_balance_decimal,
                "tier": c.tier.current,
                "coupon_codes": [x.code for x in c.coupons],
                "event_count": str(c.event_count),
                "position": str(c.position),
            }
        }
    ]
    # Read-your-writes: the example saw every webhook for LANG-a.
    assert got["customer"][0]["customer"]["points_balance"] == "10"
    assert got["customer"][0]["customer"]["tier"] == "Gold"
    assert got["customer"][0]["customer"]["event_count"] == "4"

    assert got["not_found"] == [not_found]
    assert not_found["code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert not_found["reason"] == "NOT_FOUND"
    assert got["invalid_argument"] == [invalid]
    assert invalid["metadata"] == {"field": "customer_id"}

    (page,) = got["customers"]
    assert page["customer_ids"] == [x.customer_id for x in listed.customers]
    assert {f"{lang}-a", f"{lang}-b", f"{lang}-c"} <= set(page["customer_ids"])
    assert sum(page["page_sizes"]) == len(listed.customers), page
    assert max(page["page_sizes"]) <= 2, page

    # The stream: every event stored before the live one, then caught_up at
    # the head of that moment, then the live event.
    assert [e["event"] for e in got["event"]] == [
        event_json(item.event) for item in stored if item.event.position < live_position
    ]
    assert [e["event"]["id"] for e in got["event"]] == [
        f"{lang}-ev-{n}" for n in range(1, len(WEBHOOKS) + 1)
    ]
    assert got["event"][-1]["event"]["type"] == "EVENT_TYPE_UNKNOWN"
    assert got["caught_up"] == [{"head_position": str(max(positions))}]
    assert got["live"] == [{"event": event_json(stored[-1].event)}]
    assert got["live"][0]["event"]["id"] == f"{lang}-live"
    assert got["live"][0]["event"]["position"] == str(live_position)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_example_without_client_certificate_is_refused(
    lang: str,
    built: None,
    service: ServiceProcess,
    pki: Pki,
) -> None:
    done = subprocess.run(
        [
            *example(lang),
            *tls_args(pki, service, client_cert=False),
            "--customer", f"{lang}-a",
            "--deadline-ms", "3000",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done
    (line,) = [json.loads(x) for x in done.stdout.splitlines()]
    assert line["step"] == "error" and line["during"] == "GetCustomer", line
    # The handshake fails: grpc-go, grpc++ and grpc-java say UNAVAILABLE (or
    # DEADLINE_EXCEEDED while they retry the connection); Connect for Node
    # reports the HTTP/2 session the server closed as CANCELED, or as ABORTED
    # when its socket read the close as a reset first.
    refused = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
    if lang == "ts":
        refused |= {grpc.StatusCode.CANCELLED, grpc.StatusCode.ABORTED}
    assert line["code"] in {code.value[0] for code in refused}, line


@pytest.fixture(scope="module")
def plaintext_service(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServiceProcess]:
    with ServiceProcess(tmp_path_factory.mktemp("plaintext")) as svc:
        yield svc


@pytest.mark.parametrize("lang", LANGUAGES)
def test_example_over_plaintext_reads_its_own_write(
    lang: str, built: None, plaintext_service: ServiceProcess
) -> None:
    """The `make run` set-up: no TLS, and no waiting for a live event."""
    svc = plaintext_service
    customer = f"plain-{lang}"
    position = post(svc, f"{customer}-1", "Balance changed", customer, amount=7)
    done = subprocess.run(
        [
            *example(lang),
            "--target", svc.grpc_target,
            "--customer", customer,
            "--min-position", str(position),
            "--after", str(position - 1),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done
    lines = [json.loads(x) for x in done.stdout.splitlines()]
    steps = [line["step"] for line in lines]
    assert steps == [
        "customer",
        "not_found",
        "invalid_argument",
        "customers",
        "event",
        "caught_up",
        "done",
    ], lines
    assert lines[0]["customer"]["points_balance"] == "7"
    assert lines[0]["customer"]["position"] == str(position)
    assert lines[4]["event"]["id"] == f"{customer}-1"
    assert int(lines[5]["head_position"]) >= position
