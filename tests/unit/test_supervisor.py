"""The supervisor (service/cli/supervisor.py): named children restarted
with back-off when they die, all stopped on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testkit.launch import ROOT

pytestmark = pytest.mark.slow

# Run in a child interpreter: the supervisor installs signal handlers and
# spawns processes, neither of which belongs in the test process.
SCRIPT = """
import sys, time
from pathlib import Path
from service import logs
from service.cli.supervisor import Child, supervise

def dies(supervisor: int, path: str) -> None:
    with open(path, "a") as f:
        f.write(f"{time.monotonic()}\\n")

def lives(supervisor: int, path: str) -> None:
    with open(path, "a") as f:
        f.write(f"{time.monotonic()}\\n")
    time.sleep(60)

if __name__ == "__main__":
    logs.configure("INFO")
    out = Path(sys.argv[1])
    sys.exit(supervise([
        Child("dies", dies, str(out / "dies")),
        Child("lives", lives, str(out / "lives")),
    ]))
"""


def test_a_dying_child_is_restarted_with_back_off_the_other_left_alone(
    tmp_path: Path,
) -> None:
    script = tmp_path / "sup.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    time.sleep(6)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    lines = [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]
    restarts = [x for x in lines if x["event"] == "child exited; restarting"]
    assert {x["child"] for x in restarts} == {"dies"}, out
    waits = [x["restart_in_s"] for x in restarts]
    assert len(waits) >= 2 and waits == [0.25 * 2**i for i in range(len(waits))]
    # Each restart came no sooner than its wait after the death before it.
    starts = [float(x) for x in (tmp_path / "dies").read_text().split()]
    assert len(starts) in (len(waits), len(waits) + 1)
    for earlier, later, wait in zip(starts, starts[1:], waits, strict=False):
        assert later - earlier >= wait
    assert len((tmp_path / "lives").read_text().split()) == 1  # never restarted
