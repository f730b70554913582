"""The Prometheus rules in deploy/prometheus: promtool accepts them and
their unit tests pass; every alert is tested firing, and links to a
section of docs/runbook.md that exists.

promtool comes with Debian's `prometheus` package (`make promtool`
installs it). Without it these tests skip on a laptop and FAIL in CI."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "loyalty-rules.yml"
TESTS = ROOT / "deploy" / "prometheus" / "loyalty-rules.test.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is missing: run `make promtool` (Debian's prometheus)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for g in groups for rule in g["rules"] if "alert" in rule]


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of `markdown`."""
    out = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


def test_promtool_checks_the_rules() -> None:
    done = subprocess.run(
        [promtool(), "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_pass() -> None:
    done = subprocess.run(
        [promtool(), "test", "rules", str(TESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=TESTS.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_is_tested_firing() -> None:
    cases = yaml.safe_load(TESTS.read_text())["tests"]
    fired = {
        check["alertname"]
        for case in cases
        for check in case.get("alert_rule_test", [])
        if check.get("exp_alerts")
    }
    names = {rule["alert"] for rule in alerts()}
    assert len(names) >= 10
    assert names - fired == set()


def test_every_alert_links_to_its_runbook_section() -> None:
    sections = anchors(RUNBOOK.read_text())
    for rule in alerts():
        url = rule["annotations"]["runbook_url"]
        page, _, anchor = url.partition("#")
        assert page == "docs/runbook.md", url
        assert anchor == f"alert-{rule['alert'].lower()}", url
        assert anchor in sections, f"docs/runbook.md has no section #{anchor}"
        assert rule["labels"]["severity"] in ("page", "ticket")
