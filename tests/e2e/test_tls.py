"""gRPC transport security: TLS from configured PEM files,
and mTLS when a client CA is configured. Certificates are made here with the
`openssl` CLI: a CA, a server certificate for localhost / 127.0.0.1 (SAN), a
client certificate from the same CA, and a rogue CA with its own client."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from jericommerce.loyalty.v1 import event_service_pb2 as epb
from jericommerce.loyalty.v1 import event_service_pb2_grpc as egrpc
from jericommerce.loyalty.v1 import privacy_service_pb2 as ppb
from jericommerce.loyalty.v1 import privacy_service_pb2_grpc as pgrpc
from jericommerce.loyalty.v1 import projection_service_pb2 as rpb
from jericommerce.loyalty.v1 import projection_service_pb2_grpc as rgrpc

from testkit.launch import ServiceProcess
from testkit.signing import headers
from testkit.tls import Pki, tls_channel
from testkit.webhooks import WEBHOOK_PATH, webhook_body

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl"),
]


def head_position(channel: grpc.Channel) -> int:
    stub = egrpc.EventServiceStub(channel)
    return int(stub.GetHeadPosition(epb.GetHeadPositionRequest(), timeout=5).position)


def refused(channel: grpc.Channel) -> grpc.StatusCode:
    """The call fails; returns its code (the handshake never completes)."""
    with channel, pytest.raises(grpc.RpcError) as info:
        head_position(channel)
    code = info.value.code()  # type: ignore[attr-defined]
    assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    return code  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def tls_service(
    pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    with ServiceProcess(
        tmp_path_factory.mktemp("tls"),
        GRPC_TLS_CERT=str(pki.path("server.pem")),
        GRPC_TLS_KEY=str(pki.path("server.key")),
    ) as svc:
        yield svc


@pytest.fixture(scope="module")
def mtls_service(
    pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    with ServiceProcess(
        tmp_path_factory.mktemp("mtls"),
        **pki.mtls_settings(),
    ) as svc:
        yield svc


# --- TLS --------------------------------------------------------------------


def test_tls_client_trusting_the_ca_is_served(
    tls_service: ServiceProcess, pki: Pki
) -> None:
    body = webhook_body("tls-1", "tls-customer", amount=3)
    r = httpx.post(
        tls_service.url + WEBHOOK_PATH,
        content=body,
        headers=headers(body, "Balance changed"),
        timeout=10,
    )
    assert r.status_code == 200
    for host in ("127.0.0.1", "localhost"):  # both names are in the SAN
        with tls_channel(tls_service, pki.read("ca.pem"), host=host) as channel:
            assert head_position(channel) == r.json()["position"]
            health = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_tls_client_certificate_is_optional_without_client_ca(
    tls_service: ServiceProcess, pki: Pki
) -> None:
    body = webhook_body("tls-optional-cert", "tls-customer", amount=1)
    r = httpx.post(
        tls_service.url + WEBHOOK_PATH,
        content=body,
        headers=headers(body, "Balance changed"),
        timeout=10,
    )
    assert r.status_code == 200
    with tls_channel(
        tls_service, pki.read("ca.pem"), pki.read("client.key"), pki.read("client.pem")
    ) as channel:
        assert head_position(channel) == r.json()["position"]


def test_plaintext_client_is_refused_by_a_tls_server(
    tls_service: ServiceProcess,
) -> None:
    refused(grpc.insecure_channel(tls_service.grpc_target))


def test_tls_client_not_trusting_the_ca_is_refused(
    tls_service: ServiceProcess, pki: Pki
) -> None:
    refused(tls_channel(tls_service, pki.read("rogue.pem")))


def test_tls_client_checks_the_server_name(
    tls_service: ServiceProcess, pki: Pki
) -> None:
    """The server certificate names localhost and 127.0.0.1, not other.test."""
    creds = grpc.ssl_channel_credentials(root_certificates=pki.read("ca.pem"))
    channel = grpc.secure_channel(
        tls_service.grpc_target,
        creds,
        options=[("grpc.ssl_target_name_override", "other.test")],
    )
    refused(channel)


# --- mTLS -------------------------------------------------------------------


def test_mtls_client_with_certificate_is_served(
    mtls_service: ServiceProcess, pki: Pki
) -> None:
    with tls_channel(
        mtls_service,
        pki.read("ca.pem"),
        pki.read("client.key"),
        pki.read("client.pem"),
    ) as channel:
        assert head_position(channel) == 0


def test_mtls_client_without_certificate_is_refused(
    mtls_service: ServiceProcess, pki: Pki
) -> None:
    refused(tls_channel(mtls_service, pki.read("ca.pem")))


def test_mtls_client_with_certificate_from_another_ca_is_refused(
    mtls_service: ServiceProcess, pki: Pki
) -> None:
    refused(
        tls_channel(
            mtls_service,
            pki.read("ca.pem"),
            pki.read("intruder.key"),
            pki.read("intruder.pem"),
        )
    )


def test_mtls_plaintext_client_is_refused(mtls_service: ServiceProcess) -> None:
    refused(grpc.insecure_channel(mtls_service.grpc_target))


def test_mtls_refusals_leave_the_server_serving(
    mtls_service: ServiceProcess, pki: Pki
) -> None:
    for _ in range(3):
        refused(tls_channel(mtls_service, pki.read("ca.pem")))
    test_mtls_client_with_certificate_is_served(mtls_service, pki)
    assert mtls_service.proc is not None and mtls_service.proc.poll() is None


# --- configuration ----------------------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {"GRPC_TLS_CERT": "server.pem"},
        {"GRPC_TLS_KEY": "server.key"},
        {"GRPC_TLS_CLIENT_CA": "ca.pem"},
        {"GRPC_TLS_CERT": "missing.pem", "GRPC_TLS_KEY": "server.key"},
    ],
    ids=["cert-only", "key-only", "client-ca-only", "missing-file"],
)
def test_incomplete_tls_settings_refuse_to_start(
    pki: Pki, tmp_path: Path, env: dict[str, str]
) -> None:
    svc = ServiceProcess(tmp_path, **{k: str(pki.path(v)) for k, v in env.items()})
    with pytest.raises(RuntimeError, match="exited early") as info:
        svc.start(timeout=15)
    named = [k for k in env if k in str(info.value)]
    assert named, str(info.value)[-2000:]


def test_refused_handshakes_keep_the_log_json_lines(
    mtls_service: ServiceProcess, pki: Pki
) -> None:
    refused(tls_channel(mtls_service, pki.read("ca.pem")))
    refused(grpc.insecure_channel(mtls_service.grpc_target))
    test_mtls_client_with_certificate_is_served(mtls_service, pki)
    for line in mtls_service.log().splitlines():
        assert isinstance(json.loads(line), dict), line


# --- admin operations over mTLS ----------------------------------------------


@pytest.fixture(scope="module")
def admin_service(
    pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    with ServiceProcess(
        tmp_path_factory.mktemp("admin"),
        **pki.mtls_settings(),
        ADMIN_CLIENTS="ops-admin, someone-else",
    ) as svc:
        body = webhook_body("adm-1", "adm-cus", amount=5)
        assert httpx.post(
            svc.url + WEBHOOK_PATH,
            content=body,
            headers=headers(body, "Balance changed"),
        ).is_success
        yield svc


def _admin_calls(channel: grpc.Channel) -> dict[str, object]:
    privacy = pgrpc.PrivacyServiceStub(channel)
    rebuilds = rgrpc.ProjectionServiceStub(channel)
    return {
        "ExportCustomer": lambda: list(
            privacy.ExportCustomer(
                ppb.ExportCustomerRequest(customer_id="adm-cus"), timeout=10
            )
        ),
        "RebuildProjections": lambda: rebuilds.RebuildProjections(
            rpb.RebuildProjectionsRequest(), timeout=10
        ),
        "EraseCustomer": lambda: privacy.EraseCustomer(
            ppb.EraseCustomerRequest(customer_id="adm-cus"), timeout=30
        ),
    }


def _denied_reason(call: object) -> str:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    with pytest.raises(grpc.RpcError) as info:
        call()  # type: ignore[operator]
    error = info.value
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    detail = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(detail)
    return detail.reason


def test_admin_operations_refused_to_an_unlisted_certificate(
    admin_service: ServiceProcess, pki: Pki
) -> None:
    with tls_channel(
        admin_service,
        pki.read("ca.pem"),
        pki.read("client.key"),
        pki.read("client.pem"),
    ) as channel:
        for name, call in _admin_calls(channel).items():
            assert _denied_reason(call) == "NOT_AN_ADMIN", name
        # Reads are not admin operations.
        assert head_position(channel) >= 1


def test_admin_operations_allowed_to_a_listed_certificate(
    admin_service: ServiceProcess, pki: Pki
) -> None:
    with tls_channel(
        admin_service,
        pki.read("ca.pem"),
        pki.read("ops-admin.key"),
        pki.read("ops-admin.pem"),
    ) as channel:
        calls = _admin_calls(channel)
        exported = calls["ExportCustomer"]()
        assert exported[0].customer.customer_id == "adm-cus"  # type: ignore[index]
        assert calls["RebuildProjections"]().target_position >= 1  # type: ignore[attr-defined]
        assert calls["EraseCustomer"]().erased  # type: ignore[attr-defined]


def test_admin_operations_refused_to_everyone_when_none_is_listed(
    mtls_service: ServiceProcess, pki: Pki
) -> None:
    with tls_channel(
        mtls_service,
        pki.read("ca.pem"),
        pki.read("ops-admin.key"),
        pki.read("ops-admin.pem"),
    ) as channel:
        for name, call in _admin_calls(channel).items():
            assert _denied_reason(call) == "NOT_AN_ADMIN", name
