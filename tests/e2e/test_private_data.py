"""Personal data stays private and secrets stay secret.

A service (signing secrets in rotation, at LOG_LEVEL INFO and again at
DEBUG) takes signed events for customers with distinctive emails, names and
phone numbers, some invalid (quarantined), one poison (dead-lettered), some
forged; they are read back over gRPC, and the operators' CLI lists the
quarantine and the dead letters. Then every line the service logged must be a
JSON object and mention none of those personal values, nor any secret; error
answers (HTTP and gRPC) and CLI listings must not carry the secrets either.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import pytest
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc
from jericommerce.loyalty.v1 import event_service_pb2 as epb
from jericommerce.loyalty.v1 import event_service_pb2_grpc as egrpc
from jericommerce.loyalty.v1 import projection_service_pb2 as ppb
from jericommerce.loyalty.v1 import projection_service_pb2_grpc as pgrpc

from testkit.launch import ROOT, ServiceProcess
from testkit.rawhttp import raw_http
from testkit.signing import headers as signed_headers
from testkit.signing import sign
from testkit.webhooks import WEBHOOK_PATH, webhook_body

pytestmark = pytest.mark.slow

OLD_SECRET = "pii-Old-Secret-7c1f2e9a"
NEW_SECRET = "pii-New-Secret-b93a0d4e"
SECRETS = (OLD_SECRET, NEW_SECRET, f"{OLD_SECRET},{NEW_SECRET}")


def headers(body: bytes, kind: str, secret: str = NEW_SECRET) -> dict[str, str]:
    return signed_headers(body, kind, secret)


@dataclass(frozen=True)
class Person:
    customer_id: str
    email: str
    first_name: str
    last_name: str
    phone: str

    def values(self) -> list[str]:
        digits = re.sub(r"\D", "", self.phone)
        return [self.email, self.first_name, self.last_name, self.phone, digits]


PEOPLE = (
    Person(
        "pii-cust-1",
        "Zephyrine.Quillfeather@Example.ORG",
        "Zephyrine",
        "Quillfeather",
        "+34 611 408 297",
    ),
    Person(
        "pii-cust-2",
        "marcelo.vandenbroek+loyal@mailbox.test",
        "Marcelo",
        "Vandenbroek",
        "(555) 014-7788",
    ),
    Person(
        "pii-cust-3",
        "ÁNGELES.ÑÚÑEZ-Ybarra@correo.example",
        "Ángeles",
        "Ñúñez-Ybarra",
        "0044 7700 900461",
    ),
)
# Asked for, never sent: a lookup of it must not echo it, nor log it.
UNKNOWN_EMAIL = "Nobody.Ostrogoth+probe@unknown.example"
# In events that never reach a read model (forged, invalid, too large).
STRANGER = Person(
    "pii-stranger", "Wilhelmina.Strangeways@elsewhere.test", "Wilhelmina",
    "Strangeways", "+1 (202) 555-0187",
)  # fmt: skip
PERSONAL = [v for p in (*PEOPLE, STRANGER) for v in p.values()] + [UNKNOWN_EMAIL]


@dataclass
class Scenario:
    svc: ServiceProcess
    log: str = ""
    http_errors: list[tuple[int, bytes, bytes]] = field(default_factory=list)
    grpc_errors: list[tuple[grpc.StatusCode, str, bytes]] = field(default_factory=list)
    cli: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    customers: dict[str, Any] = field(default_factory=dict)
    found_by_email: dict[str, str] = field(default_factory=dict)
    extra_outputs: dict[str, bytes] = field(default_factory=dict)


class Sender:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.client = httpx.Client(base_url=scenario.svc.url, timeout=10)
        self.n = 0

    def raw(self, body: bytes, hdrs: dict[str, str]) -> httpx.Response:
        r = self.client.post(WEBHOOK_PATH, content=body, headers=hdrs)
        if r.status_code >= 300:
            self.scenario.http_errors.append((r.status_code, *raw_response(r)))
        return r

    def post(
        self,
        kind: str,
        customer: str,
        props: dict[str, Any],
        *,
        secret: str = NEW_SECRET,
        email: str | None = None,
    ) -> int:
        self.n += 1
        envelope: dict[str, Any] = {
            "id": f"pii-ev-{self.n}",
            "customerId": customer,
            "createdAt": f"2026-03-{1 + self.n % 27:02d}T12:00:00Z",
            "properties": props,
        }
        if email is not None:
            envelope["email"] = email
        body = json.dumps(envelope).encode()
        r = self.raw(body, headers(body, kind, secret))
        assert r.status_code == 200, r.text
        return int(r.json()["position"])


def raw_response(r: httpx.Response) -> tuple[bytes, bytes]:
    head = "".join(f"{k}: {v}\n" for k, v in r.headers.items())
    return head.encode(), r.content


def run_cli(svc: ServiceProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**svc.env, "LOG_LEVEL": svc.env.get("LOG_LEVEL", "INFO")}
    done = subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def grpc_error(scenario: Scenario, call: Any, request: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=5)
    err: Any = info.value
    details = b"".join(value for key, value in err.trailing_metadata() or () if
                       isinstance(value, bytes))  # fmt: skip
    scenario.grpc_errors.append((err.code(), err.details() or "", details))
    code: grpc.StatusCode = err.code()
    return code


def play(scenario: Scenario) -> None:
    """Everything a user would do with the service, personal data included."""
    send = Sender(scenario)
    try:
        _play(scenario, send)
    finally:
        send.client.close()


def _play(scenario: Scenario, send: Sender) -> None:
    svc = scenario.svc
    last = 0
    for i, p in enumerate(PEOPLE):
        secret = OLD_SECRET if i % 2 else NEW_SECRET  # both verify in a rotation
        kw: dict[str, Any] = {"secret": secret, "email": p.email}
        created = {
            "email": p.email,
            "firstName": p.first_name,
            "lastName": p.last_name,
            "phoneNumber": p.phone,
            "origin": "web",
            "referral": f"friend-of-{p.first_name}",
        }
        send.post("Customer created", p.customer_id, created, **kw)
        requested = {
            "email": p.email,
            "downloadLink": f"https://pass.example/dl?e={p.email}",
        }
        send.post("Wallet pass requested", p.customer_id, requested, **kw)
        send.post("Balance changed", p.customer_id, {"amount": 100 + i}, **kw)
        send.post("Wallet visit", p.customer_id, {"name": p.first_name}, **kw)
        send.post("Customer birthday", p.customer_id, {"age": 30 + i}, **kw)
        last = send.post("Tier changed", p.customer_id, {"current": "Gold"})
    # A duplicate delivery of a personal event.
    body = webhook_body(
        "pii-dup",
        PEOPLE[0].customer_id,
        created_at="2026-03-01T00:00:00Z",  # older: the profile stays as it is
        email=PEOPLE[0].email,
        firstName=PEOPLE[0].first_name,
        lastName=PEOPLE[0].last_name,
        phoneNumber=PEOPLE[0].phone,
    )
    for _ in range(2):
        assert send.raw(body, headers(body, "Customer created")).status_code == 200
    # Poison: it is stored, then dead-lettered by the projections.
    poison = send.post(
        "Balance changed",
        PEOPLE[0].customer_id,
        {"amount": "lots", "reference": PEOPLE[0].phone},
        email=PEOPLE[0].email,
    )
    last = max(last, poison)

    s = STRANGER
    personal = {
        "email": s.email,
        "firstName": s.first_name,
        "lastName": s.last_name,
        "phoneNumber": s.phone,
    }
    invalid = [
        # signed, but no customerId
        json.dumps(
            {
                "id": "pii-bad-1",
                "createdAt": "2026-03-08T12:00:00Z",
                "properties": personal,
            }
        ).encode(),
        # signed, createdAt is somebody's email
        json.dumps(
            {
                "id": "pii-bad-2",
                "customerId": s.customer_id,
                "createdAt": s.email,
                "properties": personal,
            }
        ).encode(),
        # signed, properties is a name
        json.dumps(
            {
                "id": "pii-bad-3",
                "customerId": s.customer_id,
                "createdAt": "2026-03-08T12:00:00Z",
                "properties": s.first_name,
            }
        ).encode(),
        # signed, not JSON at all
        f"email={s.email}&name={s.first_name}+{s.last_name}&tel={s.phone}".encode(),
        # signed, id is a phone number given as a list
        json.dumps(
            {
                "id": [s.phone],
                "customerId": s.email,
                "createdAt": "2026-03-08T12:00:00Z",
            }
        ).encode(),
    ]
    for body in invalid:
        r = send.raw(body, headers(body, "Customer created"))
        assert r.status_code == 400, r.text
    body = webhook_body("pii-bad-4", s.customer_id, **personal)
    hdrs = headers(body, "Customer created")
    hdrs["x-jericommerce-event-type"] = ""
    assert send.raw(body, hdrs).status_code == 400
    # Forged: wrong secret, someone else's signature, none at all.
    body = webhook_body("pii-forged", s.customer_id, **personal)
    forged = [
        headers(body, "Customer created", secret="not-the-secret"),
        headers(body, "Customer created", secret=f"{OLD_SECRET},{NEW_SECRET}"),
        {**headers(body, "Customer created"), "x-jericommerce-hmac-sha256": ""},
        {"x-jericommerce-event-type": "Customer created"},
        {
            **headers(body, "Customer created"),
            "x-jericommerce-hmac-sha256": sign(body + b" ", NEW_SECRET),
        },
    ]
    for hdrs in forged:
        assert send.raw(body, hdrs).status_code == 401
    # Too large (the default limit is 1 MiB), full of personal data.
    big = webhook_body("pii-big", s.customer_id, email=s.email,
                       notes=f"{s.email} {s.phone} " * 40_000)  # fmt: skip
    assert send.raw(big, headers(big, "Customer created")).status_code == 413
    # Odd corners of the HTTP side.
    for method, path in (("GET", WEBHOOK_PATH), ("GET", "/nope"), ("POST", "/nope")):
        r = send.client.request(method, path + f"?email={s.email}", content=b"{}")
        assert r.status_code >= 400
        scenario.http_errors.append((r.status_code, *raw_response(r)))
    # A header line that is not one (the server answers 400 itself).
    junk = raw_http(
        svc.http_port,
        f"GET /healthz HTTP/1.1\r\nhost: x\r\n{s.email} {s.phone}\r\n\r\n".encode(),
    )
    assert junk.startswith(b"HTTP/1.1 400 ")
    scenario.http_errors.append((400, *junk.partition(b"\r\n\r\n")[::2]))
    for name in ("/metrics", "/readyz", "/healthz"):
        scenario.extra_outputs[name] = b"".join(raw_response(send.client.get(name)))

    # Reads over gRPC.
    with grpc.insecure_channel(svc.grpc_target) as channel:
        customers = cgrpc.CustomerServiceStub(channel)
        for p in PEOPLE:
            c = customers.GetCustomer(
                cpb.GetCustomerRequest(customer_id=p.customer_id, min_position=last),
                timeout=10,
            )
            scenario.customers[p.customer_id] = c
            found = customers.LookupCustomer(
                cpb.LookupCustomerRequest(email=p.email.swapcase()), timeout=5
            )
            scenario.found_by_email[p.email] = found.customer_id
        customers.BatchGetCustomers(
            cpb.BatchGetCustomersRequest(customer_ids=[p.customer_id for p in PEOPLE]),
            timeout=5,
        )
        customers.ListCustomers(cpb.ListCustomersRequest(page_size=10), timeout=5)
        customers.ListCustomerEvents(
            cpb.ListCustomerEventsRequest(customer_id=PEOPLE[0].customer_id),
            timeout=5,
        )
        list(
            egrpc.EventServiceStub(channel).StreamEvents(
                epb.StreamEventsRequest(after_position=0), timeout=10
            )
        )
        status = pgrpc.ProjectionServiceStub(channel).GetProjectionStatus(
            ppb.GetProjectionStatusRequest(), timeout=5
        )
        assert status.dead_letters >= 1
        for email in (UNKNOWN_EMAIL, UNKNOWN_EMAIL.upper(), STRANGER.email):
            code = grpc_error(
                scenario,
                customers.LookupCustomer,
                cpb.LookupCustomerRequest(email=email),
            )
            assert code == grpc.StatusCode.NOT_FOUND
        assert (
            grpc_error(
                scenario, customers.LookupCustomer, cpb.LookupCustomerRequest(email="")
            )
            == grpc.StatusCode.INVALID_ARGUMENT
        )
        # Callers that pass an email where an id belongs: NOT_FOUND, not logged.
        grpc_error(
            scenario,
            customers.GetCustomer,
            cpb.GetCustomerRequest(customer_id=UNKNOWN_EMAIL),
        )
        grpc_error(
            scenario,
            customers.BatchGetCustomers,
            cpb.BatchGetCustomersRequest(
                customer_ids=[PEOPLE[0].customer_id, STRANGER.email]
            ),
        )
        grpc_error(
            scenario,
            customers.ListCustomers,
            cpb.ListCustomersRequest(page_token=STRANGER.email),
        )

    # The operators' CLI, while the service runs.
    for args in (
        ("quarantine", "list"),
        ("quarantine", "list", "--json"),
        ("dead-letters", "list"),
        ("dead-letters", "list", "--json"),
        ("status",),
        ("config",),
    ):
        scenario.cli[" ".join(args)] = run_cli(svc, *args)
    quarantined = [
        json.loads(line)
        for line in scenario.cli["quarantine list --json"].stdout.splitlines()
    ]
    assert len(quarantined) == len(invalid) + 1
    letters = [
        json.loads(line)
        for line in scenario.cli["dead-letters list --json"].stdout.splitlines()
    ]
    assert [d["position"] for d in letters] == [poison]


@pytest.fixture(scope="module", params=["INFO", "DEBUG"])
def scenario(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    svc = ServiceProcess(
        tmp_path_factory.mktemp(f"pii-{request.param.lower()}"),
        WEBHOOK_SECRET=f"{OLD_SECRET},{NEW_SECRET}",
        LOG_LEVEL=request.param,
    )
    scenario = Scenario(svc)
    with svc:
        play(scenario)
    scenario.log = svc.log()  # after a clean stop: everything is flushed
    assert svc.proc is not None and svc.proc.returncode is not None
    yield scenario


def leaks(text: str, values: list[str]) -> list[str]:
    low = text.lower()
    return [v for v in values if v.lower() in low]


def log_lines(scenario: Scenario) -> list[str]:
    return [line for line in scenario.log.splitlines() if line.strip()]


def decoded(line: str) -> str:
    """The line as logged and as its JSON decodes (non-ASCII is escaped)."""
    try:
        return line + "\n" + json.dumps(json.loads(line), ensure_ascii=False)
    except ValueError:
        return line


# --- the reads worked, so the scan below means something --------------------


def test_personal_data_went_through_the_service(scenario: Scenario) -> None:
    for p in PEOPLE:
        c = scenario.customers[p.customer_id]
        assert (c.email, c.first_name, c.last_name, c.phone_number) == (
            p.email,
            p.first_name,
            p.last_name,
            p.phone,
        )
        assert scenario.found_by_email[p.email] == p.customer_id
    assert len(log_lines(scenario)) >= 3


# --- logs -------------------------------------------------------------------


def test_every_log_line_is_a_json_object(scenario: Scenario) -> None:
    for line in log_lines(scenario):
        assert isinstance(json.loads(line), dict), line


def test_logs_hold_no_personal_data(scenario: Scenario) -> None:
    found = {
        line[:300]: leaked
        for line in log_lines(scenario)
        if (leaked := leaks(decoded(line), PERSONAL))
    }
    assert not found


def test_logs_hold_no_secret(scenario: Scenario) -> None:
    assert not leaks(scenario.log, list(SECRETS))
    for done in scenario.cli.values():
        assert not leaks(done.stderr, list(SECRETS))


def test_cli_logs_are_json_and_hold_no_personal_data(scenario: Scenario) -> None:
    for args, done in scenario.cli.items():
        for line in done.stderr.splitlines():
            if line.strip():
                assert isinstance(json.loads(line), dict), (args, line)
                assert not leaks(decoded(line), PERSONAL), (args, line)


# --- answers ----------------------------------------------------------------


def test_http_error_answers_hold_no_secret_nor_personal_data(
    scenario: Scenario,
) -> None:
    statuses = sorted({status for status, _, _ in scenario.http_errors})
    assert {400, 401, 413} <= set(statuses), statuses
    for status, head, body in scenario.http_errors:
        text = (head + body).decode("utf-8", "replace")
        assert not leaks(text, list(SECRETS)), (status, text)
        if status in (400, 401, 413):  # answers to webhooks: short reasons
            assert not leaks(text, PERSONAL), (status, text)


def test_unauthorized_answers_say_nothing_of_why(scenario: Scenario) -> None:
    bodies = {body for status, _, body in scenario.http_errors if status == 401}
    assert len(bodies) == 1, bodies  # the same answer whatever was wrong


def test_grpc_errors_hold_no_secret_and_do_not_echo_unknown_emails(
    scenario: Scenario,
) -> None:
    assert len(scenario.grpc_errors) >= 5
    for code, message, details in scenario.grpc_errors:
        text = message + details.decode("utf-8", "replace")
        assert not leaks(text, list(SECRETS)), (code, text)
        assert code != grpc.StatusCode.UNKNOWN
    lookups = scenario.grpc_errors[:3]  # LookupCustomer of unknown emails
    for code, message, details in lookups:
        assert code == grpc.StatusCode.NOT_FOUND
        text = message + details.decode("utf-8", "replace")
        assert not leaks(text, [UNKNOWN_EMAIL, STRANGER.email]), text


def test_cli_listings_hold_no_secret_nor_personal_data(scenario: Scenario) -> None:
    for args, done in scenario.cli.items():
        assert not leaks(done.stdout, list(SECRETS)), args
        if args.startswith(("quarantine list", "dead-letters list")):
            assert not leaks(done.stdout, PERSONAL), (args, done.stdout)


def test_metrics_and_probes_hold_no_secret_nor_personal_data(
    scenario: Scenario,
) -> None:
    for name, answer in scenario.extra_outputs.items():
        text = answer.decode("utf-8", "replace")
        assert not leaks(text, list(SECRETS)), name
        assert not leaks(text, PERSONAL), name


# --- request lines the HTTP parser cannot read ------------------------------

MALFORMED = (
    # a request target that is not a URL: somebody's email
    f"GET {STRANGER.email} HTTP/1.1\r\nhost: x\r\n\r\n".encode(),
    # a control character inside the query string
    f"POST {WEBHOOK_PATH}?email={STRANGER.email}\x01 HTTP/1.1\r\nhost: x\r\n"
    "content-length: 2\r\n\r\n{}".encode(),
)


@pytest.fixture(scope="module")
def malformed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    svc = ServiceProcess(
        tmp_path_factory.mktemp("pii-malformed"),
        WEBHOOK_SECRET=f"{OLD_SECRET},{NEW_SECRET}",
    )
    scenario = Scenario(svc)
    with svc:
        for request in MALFORMED:
            answer = raw_http(svc.http_port, request)
            scenario.http_errors.append((0, *answer.partition(b"\r\n\r\n")[::2]))
        assert httpx.get(svc.url + "/healthz", timeout=5).status_code == 200
    scenario.log = svc.log()
    yield scenario


def test_unparseable_request_targets_are_not_logged(malformed: Scenario) -> None:
    found = [line[:300] for line in log_lines(malformed) if leaks(line, PERSONAL)]
    assert not found


def test_unparseable_request_targets_keep_the_log_json(malformed: Scenario) -> None:
    assert malformed.log
    for line in log_lines(malformed):
        assert isinstance(json.loads(line), dict), line


def test_unparseable_request_targets_are_answered_400(malformed: Scenario) -> None:
    for _, head, body in malformed.http_errors:
        assert head.startswith(b"HTTP/1.1 400 "), (head, body)
        assert json.loads(body) == {"error": "request target is not a valid URL"}
