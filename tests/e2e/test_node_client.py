"""A client in another language: Node (@grpc/grpc-js, .proto files loaded at run
time) against the real service, fed by signed webhooks over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from testkit.launch import ServiceProcess
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH, webhook_body

pytestmark = pytest.mark.slow

NODE_DIR = Path(__file__).resolve().parent / "node"
UNKNOWN_TYPE = "Points expiry reminder"

# (event type header, customer, extra body fields), posted in this order.
WEBHOOKS: list[tuple[str, str, dict[str, Any]]] = [
    ("Customer created", "node-c", {"email": "cleo@example.com"}),
    ("Customer created", "node-a", {"email": "ana@example.com", "firstName": "Ana"}),
    ("Balance changed", "node-a", {"amount": 10}),
    ("Tier changed", "node-a", {"current": "Gold"}),
    ("Coupon assigned", "node-a", {"code": "X", "header": "10% off"}),
    ("Customer scanned", "node-b", {}),
    (UNKNOWN_TYPE, "node-b", {"days": 7}),
]
EXPECTED_TYPES = [
    "EVENT_TYPE_CUSTOMER_CREATED",
    "EVENT_TYPE_CUSTOMER_CREATED",
    "EVENT_TYPE_BALANCE_CHANGED",
    "EVENT_TYPE_TIER_CHANGED",
    "EVENT_TYPE_COUPON_ASSIGNED",
    "EVENT_TYPE_CUSTOMER_SCANNED",
    "EVENT_TYPE_UNKNOWN",
]


def _tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm:
        return node, npm
    missing = " and ".join(n for n, p in (("node", node), ("npm", npm)) if not p)
    reason = f"{missing.upper()} NOT FOUND: THE NODE gRPC CLIENT TEST DID NOT RUN"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI must run it")
    pytest.skip(reason)


def _installed(package: str) -> str | None:
    manifest = NODE_DIR / "node_modules" / package / "package.json"
    try:
        return str(json.loads(manifest.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def _ensure_node_modules(npm: str) -> None:
    """`npm ci` unless node_modules already holds the pinned versions."""
    wanted = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]
    if all(_installed(name) == version for name, version in wanted.items()):
        return
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def node() -> str:
    node, npm = _tools()
    _ensure_node_modules(npm)
    return node


def _post(svc: ServiceProcess, n: int, kind: str, customer: str, **kw: Any) -> int:
    body = webhook_body(f"node-ev-{n}", customer, **kw)
    r = httpx.post(
        svc.url + WEBHOOK_PATH,
        content=body,
        headers=headers(body, kind),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["status"] == "accepted", answer
    return int(answer["position"])


def test_node_client_reads_what_webhooks_wrote(node: str, tmp_path: Path) -> None:
    with ServiceProcess(tmp_path / "svc") as svc:
        positions = [
            _post(svc, n, kind, customer, **kw)
            for n, (kind, customer, kw) in enumerate(WEBHOOKS, start=1)
        ]
        assert positions == sorted(set(positions)), positions
        spec = {"customer_id": "node-a", "min_position": max(positions)}
        done = subprocess.run(
            [node, "client.mjs", json.dumps(spec)],
            cwd=NODE_DIR,
            env={**os.environ, "GRPC_TARGET": svc.grpc_target},
            capture_output=True,
            text=True,
            timeout=60,
        )
        diagnosis = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        assert done.returncode == 0, f"{diagnosis}\nservice log:\n{svc.log()}"
    got = json.loads(done.stdout)

    customer = got["customer"]
    assert customer["customer_id"] == "node-a"
    assert customer["email"] == "ana@example.com"
    assert customer["points_balance"] == "10"  # int64, as a string in JS
    assert customer["points_balance_decimal"] == "10"
    assert customer["tier"]["current"] == "Gold"
    assert customer["coupons"][0]["code"] == "X"
    assert customer["wallet_pass"]["status"] == "WALLET_PASS_STATUS_NONE"
    assert customer["event_count"] == "4"
    assert int(customer["position"]) >= positions[4]

    assert got["customer_ids"] == ["node-a", "node-b", "node-c"]
    assert all(size <= 2 for size in got["page_sizes"]), got["page_sizes"]

    assert got["events"] == [
        {
            "position": str(pos),
            "id": f"node-ev-{n}",
            "type": type_,
            "type_name": kind,
            "customer_id": customer_id,
        }
        for n, (pos, type_, (kind, customer_id, _)) in enumerate(
            zip(positions, EXPECTED_TYPES, WEBHOOKS, strict=True), start=1
        )
    ]
    assert got["other_stream_items"] == []

    assert got["errors"]["empty_id"]["code"] == 3, got["errors"]  # INVALID_ARGUMENT
    assert got["errors"]["unknown_id"]["code"] == 5, got["errors"]  # NOT_FOUND
