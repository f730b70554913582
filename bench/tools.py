"""External tools (wrk, h2load, py-spy) and core pinning.

The machine has two cores: the load generator (and this process) get one,
the server under test the other, so neither steals the other's time.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEBIAN_PACKAGES = {"wrk": "wrk", "h2load": "nghttp2-client"}
# Taken at import, before pin_self narrows this process (and its children).
ALL_CORES = tuple(sorted(os.sched_getaffinity(0)))


class ToolMissing(RuntimeError):
    """A tool is not installed and could not be installed; says how."""


def _apt_install(package: str) -> bool:
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(cmd, env=env, **quiet).returncode == 0:  # type: ignore[call-overload]
        return True
    subprocess.run(["apt-get", "update", "-q"], env=env, **quiet)  # type: ignore[call-overload]
    return subprocess.run(cmd, env=env, **quiet).returncode == 0  # type: ignore[call-overload]


def ensure_binary(name: str) -> str:
    """The path of `name`, installing its Debian package first when we are
    root; otherwise ToolMissing with the command to run."""
    package = DEBIAN_PACKAGES[name]
    path = shutil.which(name)
    if path is None and os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"  installing {package} (apt-get) for {name} ...", flush=True)
        _apt_install(package)
        path = shutil.which(name)
    if path is None:
        raise ToolMissing(
            f"{name} is missing: run `sudo apt-get install -y {package}` "
            "(or run the benchmark as root, which installs it)"
        )
    return path


def ensure_py_spy() -> str:
    """py-spy from the virtual environment, pip-installing it if missing."""
    path = Path(sys.executable).parent / "py-spy"
    if not path.exists():
        print("  installing py-spy into the virtual environment ...", flush=True)
        cmd = [sys.executable, "-m", "pip", "install", "-q", "py-spy==0.4.3"]
        if subprocess.run(cmd).returncode != 0 or not path.exists():
            raise ToolMissing(
                f"py-spy is missing: run `{sys.executable} -m pip install py-spy`"
            )
    return str(path)


def children_cpu() -> float:
    """CPU seconds used so far by this process's finished children."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cores() -> tuple[int, int]:
    """(load generator core, server core); the same core on a 1-core machine."""
    available = sorted(os.sched_getaffinity(0))
    return available[0], available[-1]


def pin_self(core: int) -> None:
    os.sched_setaffinity(0, {core})


def pinned(argv: list[str], core: int | Sequence[int] | None) -> list[str]:
    """`argv` run on `core` only (taskset when present, else unpinned); None:
    on every core (children would otherwise inherit our own pinning)."""
    if shutil.which("taskset") is None:
        return argv
    chosen = ALL_CORES if core is None else [core] if isinstance(core, int) else core
    return ["taskset", "-c", ",".join(map(str, chosen)), *argv]


def client_result(argv: list[str], core: int, cwd: Path) -> dict[str, Any]:
    """Run a measuring client on `core` and return the JSON object it
    printed last (what came before is its progress)."""
    out = subprocess.run(
        pinned(argv, core), cwd=cwd, capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result
