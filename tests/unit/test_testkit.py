"""The test kit signs as the ingress verifies, its traffic is valid, and the
master key it makes for a run does not outlive the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from service.ingest import parse_envelope, verify_signature
from testkit import traffic
from testkit.signing import SECRET, STYLES, sign
from testkit.webhooks import webhook_body


@pytest.mark.parametrize("style", STYLES)
def test_every_signing_style_verifies_and_only_with_its_secret(style: str) -> None:
    body = webhook_body("k1", amount=3)
    assert verify_signature(body, sign(body, SECRET, style), [SECRET.encode()])
    assert not verify_signature(body, sign(body, "other", style), [SECRET.encode()])


def test_traffic_is_deterministic_unique_and_parses() -> None:
    first = list(traffic.webhooks(300, 20, tag="t"))
    assert first == list(traffic.webhooks(300, 20, tag="t"))
    envelopes = [parse_envelope(w.body, w.type_name) for w in first]
    assert len({e.id for e in envelopes}) == 300
    assert {e.customer_id for e in envelopes} == {
        traffic.customer_id(n) for n in range(20)
    }
    # A later piece of the stream goes on with the ids.
    later = [
        parse_envelope(w.body, w.type_name).id
        for w in traffic.webhooks(2, 20, tag="t", offset=300)
    ]
    assert later == ["t-00000300", "t-00000301"]


def test_a_runs_master_key_file_is_removed_when_the_run_ends() -> None:
    # In a process of its own: the file is removed at that process's exit.
    made = subprocess.run(
        [
            sys.executable,
            "-c",
            "from testkit.keys import master_key_file; p = master_key_file(); "
            "assert p.stat().st_size > 0; print(p)",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    ).stdout.strip()
    assert made.endswith("master.key")
    assert not Path(made).parent.exists()
