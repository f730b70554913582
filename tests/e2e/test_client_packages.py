"""The client packages `make clients` makes for other teams, used the way
another team would: the npm tarball installed into a fresh Node project, the
C++ CMake package unpacked from its tarball and found with find_package; each
then calls the running service."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testkit.clients import CLIENTS, build_clients
from testkit.launch import ServiceProcess
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH, webhook_body

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServiceProcess, int]]:
    """The service, and the position of the one event it holds."""
    with ServiceProcess(tmp_path_factory.mktemp("packages")) as svc:
        body = webhook_body("pkg-1", "pkg-customer", amount="0.000000000000000001")
        r = httpx.post(
            svc.url + WEBHOOK_PATH,
            content=body,
            headers=headers(body, "Balance changed"),
            timeout=10,
        )
        assert r.status_code == 200, r.text
        yield svc, int(r.json()["position"])


def only(pattern: str, where: Path) -> Path:
    (found,) = where.glob(pattern)
    return found


NODE_PROGRAM = """
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { EventService } from "@jericommerce/loyalty-client";
// Each generated module is also reachable by its own path.
import { EventType } from
  "@jericommerce/loyalty-client/jericommerce/loyalty/v1/event_pb";

const transport = createGrpcTransport({ baseUrl: `http://${process.argv[2]}` });
const events = createClient(EventService, transport);
const head = await events.getHeadPosition({}, { timeoutMs: 10000 });
for await (const { item } of events.streamEvents({}, { timeoutMs: 10000 })) {
  if (item.case === "event" && item.value.type === EventType.BALANCE_CHANGED) {
    const payload = item.value.payload;
    const amount =
      payload.case === "balanceChanged" ? payload.value.amount?.value : null;
    console.log(JSON.stringify({ head: head.position.toString(), amount }));
  }
}
"""


def test_npm_package_installs_and_calls_the_service(
    service: tuple[ServiceProcess, int], tmp_path: Path
) -> None:
    build_clients()
    svc, position = service
    npm, node = shutil.which("npm"), shutil.which("node")
    assert npm and node, "node and npm vanished after the build"
    tarball = only("jericommerce-loyalty-client-*.tgz", CLIENTS / "ts" / "build")
    connect = json.loads((CLIENTS / "ts" / "package.json").read_text())["dependencies"]
    project = tmp_path / "team"
    project.mkdir()
    (project / "package.json").write_text('{"type": "module", "private": true}')
    installed = subprocess.run(
        [npm, "install", "--prefer-offline", "--no-audit", "--no-fund",
         str(tarball), *(f"{name}@{version}" for name, version in connect.items()
                         if name.startswith("@connectrpc/"))],
        cwd=project, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    (project / "main.js").write_text(NODE_PROGRAM)
    run = subprocess.run(
        [node, "main.js", svc.grpc_target],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {
        "head": str(position),
        "amount": "0.000000000000000001",
    }


CMAKE_PROJECT = """
cmake_minimum_required(VERSION 3.18)
project(team LANGUAGES CXX)
set(CMAKE_CXX_STANDARD 17)
find_package(LoyaltyClient 0.1 CONFIG REQUIRED)
add_executable(head main.cc)
target_link_libraries(head PRIVATE loyalty::client)
"""

CPP_PROGRAM = """
#include <iostream>
#include <grpcpp/grpcpp.h>
#include "jericommerce/loyalty/v1/event_service.grpc.pb.h"

int main(int argc, char** argv) {
  auto channel = grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials());
  auto events = jericommerce::loyalty::v1::EventService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  jericommerce::loyalty::v1::GetHeadPositionResponse head;
  grpc::Status status = events->GetHeadPosition(&context, {}, &head);
  if (!status.ok()) return 1;
  std::cout << head.position() << std::endl;
}
"""


def test_cmake_package_unpacked_from_its_tarball_builds_a_client(
    service: tuple[ServiceProcess, int], tmp_path: Path
) -> None:
    build_clients()
    svc, position = service
    tarball = only("loyalty-client-*-Linux.tar.gz", CLIENTS / "cpp" / "build")
    with tarfile.open(tarball) as archive:
        archive.extractall(tmp_path / "prefix", filter="data")
    prefix = only("loyalty-client-*", tmp_path / "prefix")
    source = tmp_path / "team"
    source.mkdir()
    (source / "CMakeLists.txt").write_text(CMAKE_PROJECT)
    (source / "main.cc").write_text(CPP_PROGRAM)
    build = tmp_path / "build"
    for argv in (
        ["cmake", "-S", str(source), "-B", str(build), f"-DCMAKE_PREFIX_PATH={prefix}"],
        ["cmake", "--build", str(build)],
    ):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
    run = subprocess.run(
        [str(build / "head"), svc.grpc_target],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(position)


def test_java_artifact_sits_in_a_maven_repository_layout() -> None:
    """`mvn` cannot resolve grpc-java offline here, so the layout and the
    pom are checked as Maven reads them; the Java example itself compiles
    and runs against this jar (scripts/build_clients.sh)."""
    import xml.etree.ElementTree as ET
    import zipfile

    build_clients()
    repo = CLIENTS / "java" / "build" / "maven"
    pom_path = only("com/jericommerce/loyalty-client/*/loyalty-client-*.pom", repo)
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    pom = ET.parse(pom_path).getroot()
    group, artifact, version = (
        pom.findtext(f"m:{tag}", namespaces=ns)
        for tag in ("groupId", "artifactId", "version")
    )
    assert version and "@" not in version
    assert pom_path == (
        repo
        / "com/jericommerce"
        / f"{artifact}"
        / version
        / f"{artifact}-{version}.pom"
    )
    assert group == "com.jericommerce"
    deps = {
        d.findtext("m:artifactId", namespaces=ns): d.findtext(
            "m:version", namespaces=ns
        )
        for d in pom.iterfind("m:dependencies/m:dependency", ns)
    }
    assert {"grpc-stub", "grpc-protobuf", "protobuf-java"} <= set(deps), deps
    with zipfile.ZipFile(pom_path.with_suffix(".jar")) as jar:
        names = jar.namelist()
    assert "com/jericommerce/loyalty/v1/EventServiceGrpc.class" in names
    assert "com/jericommerce/loyalty/v1/BalanceChanged.class" in names
    # google.rpc comes from proto-google-common-protos, never a second copy.
    assert not [n for n in names if n.startswith("com/google/")]
