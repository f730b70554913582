"""The scenario a test module shares: one service, what it answered, what it
logged, and the sender that talks to it."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import pytest

from testkit.launch import ROOT, ServiceProcess
from testkit.pii.people import NEW_SECRET, headers
from testkit.webhooks import WEBHOOK_PATH


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


def log_lines(scenario: Scenario) -> list[str]:
    return [line for line in scenario.log.splitlines() if line.strip()]


def decoded(line: str) -> str:
    """The line as logged and as its JSON decodes (non-ASCII is escaped)."""
    try:
        return line + "\n" + json.dumps(json.loads(line), ensure_ascii=False)
    except ValueError:
        return line
