"""Each example program ends when its work is done, not when a deadline or an
idle connection runs out (Connect for Node kept an abandoned stream's
deadline timer alive, so the TypeScript example used to exit only at its
deadline)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testkit.clients import LANGUAGES, build_clients, program
from testkit.launch import ServiceProcess
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH, webhook_body

pytestmark = pytest.mark.slow

# Far longer than any example needs: an example still running when its work
# is done would run this long.
DEADLINE_S = 120
# What an exit "at once" may take on a loaded CI machine (a JVM starts in ~1 s).
PROMPT_S = 30


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with ServiceProcess(tmp_path_factory.mktemp("exit")) as svc:
        yield svc


@pytest.mark.parametrize("lang", LANGUAGES)
def test_example_exits_when_done(
    lang: str, service: ServiceProcess, tmp_path: Path
) -> None:
    build_clients()
    customer = f"exit-{lang}"
    body = webhook_body(f"{customer}-1", customer, amount=3)
    r = httpx.post(
        service.url + WEBHOOK_PATH,
        content=body,
        headers=headers(body, "Balance changed"),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    position = r.json()["position"]
    started = time.monotonic()
    done = subprocess.run(
        [
            *program(lang),
            "--target", service.grpc_target,
            "--customer", customer,
            "--min-position", str(position),
            "--after", str(position - 1),
            "--deadline-ms", str(DEADLINE_S * 1000),
        ],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S + 30,
    )  # fmt: skip
    took = time.monotonic() - started
    assert done.returncode == 0, done
    steps = [json.loads(line)["step"] for line in done.stdout.splitlines()]
    assert steps[-1] == "done", steps
    assert took < PROMPT_S, f"{lang} exited {took:.1f} s after it started"
