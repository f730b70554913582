"""The replay consumers over mTLS, as internal services run them: with the
CA, a client certificate and its key each replays to the end; without the
client certificate the handshake is refused and the consumer keeps
retrying (saying so), never reporting figures it did not read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testkit.clients import LANGUAGES, build_clients, program
from testkit.consumers import Consumer
from testkit.launch import ServiceProcess
from testkit.signing import headers
from testkit.tls import Pki
from testkit.webhooks import WEBHOOK_PATH, webhook_body

pytestmark = pytest.mark.slow

AMOUNTS = (5, 7, 30)


@pytest.fixture(scope="module")
def service(
    pki: Pki,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServiceProcess]:
    with ServiceProcess(
        tmp_path_factory.mktemp("mtls-consumers"),
        **pki.mtls_settings(),
    ) as svc:
        for n, amount in enumerate(AMOUNTS):
            body = webhook_body(f"tls-{n}", "tls-customer", amount=amount)
            r = httpx.post(
                svc.url + WEBHOOK_PATH,
                content=body,
                headers=headers(body, "Balance changed"),
                timeout=10,
            )
            assert r.status_code == 200, r.text
        yield svc


def argv(lang: str, svc: ServiceProcess, pki: Pki, state: Path) -> list[str]:
    return [
        *program(lang, "consumer"),
        "--target", svc.grpc_target,
        "--state", str(state),
        "--ca", str(pki.path("ca.pem")),
    ]  # fmt: skip


@pytest.mark.parametrize("lang", LANGUAGES)
def test_consumer_replays_over_mtls(
    lang: str,
    service: ServiceProcess,
    pki: Pki,
    tmp_path: Path,
) -> None:
    build_clients()
    client = [
        "--cert",
        str(pki.path("client.pem")),
        "--key",
        str(pki.path("client.key")),
    ]
    with Consumer([*argv(lang, service, pki, tmp_path / "s.json"), *client]) as run:
        done = run.until("done")
        assert run.close() == 0, run.stderr()
    assert done["received"]["events"] == len(AMOUNTS), done
    (month,) = done["figures"]["(none)"].values()
    assert month["issued"] == str(sum(AMOUNTS))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_consumer_without_client_certificate_is_refused(
    lang: str,
    service: ServiceProcess,
    pki: Pki,
    tmp_path: Path,
) -> None:
    build_clients()
    with Consumer(argv(lang, service, pki, tmp_path / "s.json")) as run:
        line = run.until("retrying")
        run.kill()
    steps = [x["step"] for x in run.seen]
    assert "done" not in steps and "caught_up" not in steps, run.seen
    # grpc-go, grpc++ and grpc-java say UNAVAILABLE; Connect for Node reports
    # the HTTP/2 session the server closed as CANCELED, or as ABORTED when
    # its socket read the close as a reset first.
    assert line["code"] in ({14, 1, 10} if lang == "ts" else {14}), line
