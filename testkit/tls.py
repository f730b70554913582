"""A throw-away PKI (openssl) and TLS channels, for the end-to-end TLS tests."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import grpc

from testkit.launch import ServiceProcess


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@dataclass(frozen=True)
class Pki:
    dir: Path

    def path(self, name: str) -> Path:
        return self.dir / name

    def mtls_settings(self) -> dict[str, str]:
        """The service's settings for gRPC over TLS requiring a client
        certificate signed by this CA."""
        return {
            "GRPC_TLS_CERT": str(self.path("server.pem")),
            "GRPC_TLS_KEY": str(self.path("server.key")),
            "GRPC_TLS_CLIENT_CA": str(self.path("ca.pem")),
        }

    def read(self, name: str) -> bytes:
        return (self.dir / name).read_bytes()


def make_ca(d: Path, name: str) -> None:
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
        "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )  # fmt: skip


def make_leaf(d: Path, name: str, ca: str, extensions: str) -> None:
    (d / f"{name}.ext").write_text(extensions)
    openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
        "-subj", f"/CN={name}",
        cwd=d,
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem",
        "-CAkey", f"{ca}.key", "-CAcreateserial", "-out", f"{name}.pem",
        "-days", "2", "-extfile", f"{name}.ext",
        cwd=d,
    )  # fmt: skip


def make_pki(d: Path) -> Pki:
    """A CA with a server certificate (localhost, 127.0.0.1), clients `client`
    and `ops-admin`, and a rogue CA with its client `intruder`."""
    make_ca(d, "ca")
    make_leaf(
        d,
        "server",
        "ca",
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    client_ext = (
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=clientAuth\n"
    )
    make_leaf(d, "client", "ca", client_ext)
    make_leaf(d, "ops-admin", "ca", client_ext)  # the admin of the tests
    make_ca(d, "rogue")  # a CA the service does not trust, and its client
    make_leaf(d, "intruder", "rogue", client_ext)
    return Pki(d)


def tls_channel(
    svc: ServiceProcess,
    root: bytes | None,
    key: bytes | None = None,
    chain: bytes | None = None,
    *,
    host: str = "127.0.0.1",
) -> grpc.Channel:
    creds = grpc.ssl_channel_credentials(
        root_certificates=root, private_key=key, certificate_chain=chain
    )
    return grpc.secure_channel(f"{host}:{svc.grpc_port}", creds)
