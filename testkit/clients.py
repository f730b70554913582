"""The generated clients' programs (scripts/build_clients.sh, what `make
clients` runs): building them once per test session, and their command lines.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess

import pytest

from testkit.launch import ROOT

CLIENTS = ROOT / "clients"
LANGUAGES = ("ts", "go", "cpp", "java")

_built: dict[str, str] = {}


def build_clients() -> None:
    """Build every client (a no-op when up to date). Where a tool chain
    cannot be installed here the calling test is skipped with a loud reason,
    and fails under CI, which must run it."""
    if "reason" not in _built:
        # Parallel test workers build in turn: the second finds the first's
        # build up to date.
        with (CLIENTS / "build.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            done = subprocess.run(
                ["bash", "scripts/build_clients.sh"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=1200,
            )
        if done.returncode == 0:
            _built["reason"] = ""
        elif done.returncode == 3:
            _built["reason"] = (
                "GENERATED CLIENTS NOT BUILT, THEIR TESTS DID NOT RUN: "
                + done.stderr.strip().splitlines()[-1]
            )
        else:
            pytest.fail(f"build failed:\n{done.stdout}\n{done.stderr}")
    reason = _built["reason"]
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run them")
        pytest.skip(reason)


def program(lang: str, name: str = "example") -> list[str]:
    """The command line of a built program: `example` or `consumer`."""
    if lang == "ts":
        node = shutil.which("node")
        assert node, "node vanished after the build"
        return [node, str(CLIENTS / "ts" / "build" / "js" / f"{name}.js")]
    return [str(CLIENTS / lang / "build" / f"loyalty-{name}")]
