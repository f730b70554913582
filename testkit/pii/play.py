"""What the scenario plays: signed events of the people (some invalid, one
poison, some forged), then reads over gRPC and the operators' CLI."""

from __future__ import annotations

import json
from typing import Any

import grpc
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc
from jericommerce.loyalty.v1 import event_service_pb2 as epb
from jericommerce.loyalty.v1 import event_service_pb2_grpc as egrpc
from jericommerce.loyalty.v1 import projection_service_pb2 as ppb
from jericommerce.loyalty.v1 import projection_service_pb2_grpc as pgrpc

from testkit.pii.people import (
    NEW_SECRET,
    OLD_SECRET,
    PEOPLE,
    STRANGER,
    UNKNOWN_EMAIL,
    headers,
)
from testkit.pii.scenario import Scenario, Sender, grpc_error, raw_response, run_cli
from testkit.rawhttp import raw_http
from testkit.signing import sign
from testkit.webhooks import WEBHOOK_PATH, webhook_body


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
