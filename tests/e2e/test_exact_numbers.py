"""Someone sends a `Balance changed` whose amount is 12345678901234567890 or
0.000000000000000001 (JSON numbers, as JeriCommerce sends them) and reads it
back exactly, as decimal text, from every client language: the typed payload's
`Decimal`, never a double on the way."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import grpc
import httpx
import pytest
from jericommerce.loyalty.v1 import event_service_pb2 as epb
from jericommerce.loyalty.v1 import event_service_pb2_grpc as egrpc

from testkit.clients import LANGUAGES, build_clients, program
from testkit.launch import ServiceProcess
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH

pytestmark = pytest.mark.slow

CUSTOMER = "exact-numbers"
# As sent (JSON number text) -> as read back (canonical decimal text).
AMOUNTS = {
    "12345678901234567890": "12345678901234567890",
    "0.000000000000000001": "0.000000000000000001",
    "-1234567890.000000000000000001": "-1234567890.000000000000000001",
    "2.50": "2.5",
}


@pytest.fixture(scope="module")
def sent(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServiceProcess, int]]:
    """The service, and the position just before the amounts."""
    with ServiceProcess(tmp_path_factory.mktemp("exact")) as svc:
        positions = []
        for n, amount in enumerate(AMOUNTS):
            body = (
                f'{{"id": "exact-{n}", "customerId": "{CUSTOMER}", '
                '"createdAt": "2026-03-08T12:00:00Z", '
                f'"properties": {{"amount": {amount}}}}}'
            ).encode()
            r = httpx.post(
                svc.url + WEBHOOK_PATH,
                content=body,
                headers=headers(body, "Balance changed"),
                timeout=10,
            )
            assert r.status_code == 200, r.text
            positions.append(int(r.json()["position"]))
        yield svc, min(positions) - 1


def test_python_client_reads_the_exact_amounts(
    sent: tuple[ServiceProcess, int],
) -> None:
    svc, after = sent
    with grpc.insecure_channel(svc.grpc_target) as channel:
        items = egrpc.EventServiceStub(channel).StreamEvents(
            epb.StreamEventsRequest(after_position=after), timeout=30
        )
        got = [x.event.balance_changed.amount.value for x in items]
    assert got == list(AMOUNTS.values())


@pytest.mark.parametrize("lang", LANGUAGES)
def test_example_reads_the_exact_amounts(
    lang: str, sent: tuple[ServiceProcess, int]
) -> None:
    build_clients()
    svc, after = sent
    done = subprocess.run(
        [*program(lang), "--target", svc.grpc_target, "--customer", CUSTOMER,
         "--after", str(after)],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done
    lines = [json.loads(x) for x in done.stdout.splitlines()]
    got = [x["event"]["amount"] for x in lines if x["step"] == "event"]
    assert got == list(AMOUNTS.values()), lines
