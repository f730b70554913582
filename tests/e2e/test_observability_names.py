"""The alert rules and the Grafana dashboard read only series the service
exports: every `loyalty_*` name in a rule or a panel appears in a live
service's /metrics after a little traffic, so the three cannot drift apart.
The panels' PromQL parses (promtool), and the dashboard is provisionable."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import yaml
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc
from jericommerce.loyalty.v1 import event_service_pb2 as epb
from jericommerce.loyalty.v1 import event_service_pb2_grpc as egrpc
from prometheus_client.parser import text_string_to_metric_families

from testkit.launch import ServiceProcess
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH, webhook_body

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "loyalty-rules.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "loyalty.json"
PROVIDER = DEPLOY / "grafana" / "provisioning" / "dashboards" / "loyalty.yaml"
NAME = re.compile(r"\bloyalty_[a-z0-9_]+")
RECORDED = re.compile(r"\bloyalty:[a-z0-9_:]+")


def rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for g in groups for rule in g["rules"]]


def recorded_names() -> set[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["record"] for g in groups for rule in g["rules"] if "record" in rule}


def panels() -> list[dict[str, Any]]:
    return [
        p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"
    ]


def panel_exprs() -> list[str]:
    return [t["expr"] for p in panels() for t in p["targets"]]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """Sample names of a live service's /metrics after webhooks (accepted,
    refused, quarantined) and gRPC calls (unary, failing, streaming)."""
    with ServiceProcess(tmp_path_factory.mktemp("names")) as svc:
        url = svc.url + WEBHOOK_PATH
        for i in range(3):
            body = webhook_body(f"names-{i}", "names-c", amount=i)
            answer = httpx.post(
                url, content=body, headers=headers(body, "Balance changed")
            )
            assert answer.status_code == 200
        assert httpx.post(url, content=b"{}").status_code == 401
        assert (
            httpx.post(url, content=b"x", headers=headers(b"x", "x")).status_code == 400
        )
        with grpc.insecure_channel(svc.grpc_target) as channel:
            customers = cgrpc.CustomerServiceStub(channel)
            customers.GetCustomer(
                cpb.GetCustomerRequest(customer_id="names-c", min_position=3), timeout=5
            )
            with pytest.raises(grpc.RpcError):
                customers.GetCustomer(
                    cpb.GetCustomerRequest(customer_id="no"), timeout=5
                )
            stream = egrpc.EventServiceStub(channel).StreamEvents(
                epb.StreamEventsRequest(), timeout=5
            )
            assert len([item for item in stream]) >= 3
        text = httpx.get(svc.url + "/metrics", timeout=5).text
    yield {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_every_name_a_rule_reads_is_exported(exported: set[str]) -> None:
    used = {name for expr in rule_exprs() for name in NAME.findall(expr)}
    assert len(used) >= 10
    assert used - exported == set()


def test_every_name_a_panel_reads_is_exported(exported: set[str]) -> None:
    used = {name for expr in panel_exprs() for name in NAME.findall(expr)}
    assert len(used) >= 12
    assert used - exported == set()
    recorded = {name for expr in panel_exprs() for name in RECORDED.findall(expr)}
    assert recorded - recorded_names() == set()


def test_the_panels_cover_what_an_operator_watches() -> None:
    titles = " | ".join(p["title"].lower() for p in panels())
    for topic in (
        "ingest rate",
        "batch size",
        "group-commit latency",
        "projection lag",
        "projection rate",
        "grpc rate",
        "grpc errors",
        "grpc latency",
        "streams",
        "quarantine",
        "dead letters",
    ):
        assert topic in titles, topic
    ids = [p["id"] for p in json.loads(DASHBOARD.read_text())["panels"]]
    assert len(ids) == len(set(ids))
    for p in panels():
        assert p["datasource"]["uid"] == "${datasource}" and p["description"]


def test_the_dashboard_is_provisionable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and "id" not in dashboard
    (variable,) = dashboard["templating"]["list"]
    assert variable == {**variable, "name": "datasource", "type": "datasource"}
    (provider,) = yaml.safe_load(PROVIDER.read_text())["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


def test_the_panels_promql_parses(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool is missing: run `make promtool`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    rules = [
        # Grafana's interval variable is not PromQL; any duration stands in.
        {"record": f"panel:expr_{i}", "expr": e.replace("$__rate_interval", "5m")}
        for i, e in enumerate(panel_exprs())
    ]
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    done = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
