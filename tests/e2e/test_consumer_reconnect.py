"""A following consumer outlives a service restart and a reset connection:
the broken stream ends (UNAVAILABLE; Connect for Node says CANCELED, or
ABORTED when its socket reads the reset), the consumer saves, retries with
back-off after its saved position, and goes on with the events stored after,
none missed or applied twice."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from testkit.clients import CLIENTS, LANGUAGES, build_clients, program
from testkit.consumers import Consumer
from testkit.launch import ServiceProcess
from testkit.resetproxy import ResetProxy
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH, webhook_body

pytestmark = pytest.mark.slow


def post(svc: ServiceProcess, event_id: str, amount: int) -> int:
    body = webhook_body(event_id, "reconnect-1", amount=amount)
    r = httpx.post(
        svc.url + WEBHOOK_PATH,
        content=body,
        headers=headers(body, "Balance changed"),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return int(r.json()["position"])


def post_after_and_stop(
    svc: ServiceProcess, run: Consumer
) -> tuple[dict[str, Any], int]:
    """After the break: one more event, seen and saved by the resumed
    consumer, which is then stopped. Its `done` line and that position."""
    last = post(svc, "after", 7)
    while int(run.until("saved", timeout=60)["position"]) < last:
        pass
    run.proc.send_signal(signal.SIGTERM)
    done = run.until("done")
    assert run.close() == 0, run.stderr()
    return done, last


def received_each_event_once(done: dict[str, Any], last: int, state: Path) -> None:
    """Each event once, in this one run: 5 before the break, 7 after."""
    assert done["received"]["events"] == 2, done
    assert [r["issued"] for r in done["figures"]["(none)"].values()] == ["12"]
    assert json.loads(state.read_text())["position"] == str(last)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_following_consumer_resumes_after_the_service_restarts(
    lang: str, tmp_path: Path
) -> None:
    build_clients()
    svc = ServiceProcess(tmp_path / "data")
    state = tmp_path / "state.json"
    argv = [*program(lang, "consumer"), "--target", svc.grpc_target]
    try:
        svc.start()
        post(svc, "before", 5)
        with Consumer([*argv, "--state", str(state), "--follow"]) as run:
            run.until("caught_up")
            svc.kill()  # SIGKILL: the stream breaks mid-call
            run.until("retrying", timeout=30)
            svc.start()
            done, last = post_after_and_stop(svc, run)
    finally:
        svc.stop()
    received_each_event_once(done, last, state)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_following_consumer_resumes_after_its_connection_is_reset(
    lang: str, tmp_path: Path
) -> None:
    """A killed service's kernel answers the client's socket with a FIN or
    an RST, whichever its unread bytes decide; the proxy makes it an RST
    every time, as a load balancer dropping the connection does."""
    build_clients()
    svc = ServiceProcess(tmp_path / "data")
    state = tmp_path / "state.json"
    try:
        svc.start()
        post(svc, "before", 5)
        with ResetProxy(svc.grpc_target) as proxy:
            argv = [*program(lang, "consumer"), "--target", proxy.target]
            with Consumer([*argv, "--state", str(state), "--follow"]) as run:
                run.until("caught_up")
                assert proxy.reset() >= 1
                run.until("retrying", timeout=30)
                done, last = post_after_and_stop(svc, run)
    finally:
        svc.stop()
    received_each_event_once(done, last, state)


# What Connect for Node gives for each case, and whether the TypeScript
# programs retry it (clients/ts/broken.ts).
BROKEN_CASES = """
const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
const out = {
  unavailable: connectionBroke(new ConnectError("no connection", Code.Unavailable)),
  canceled: connectionBroke(new ConnectError("stream reset", Code.Canceled)),
  aborted_by_reset: connectionBroke(
    new ConnectError("read ECONNRESET", Code.Aborted, undefined, undefined, reset),
  ),
  aborted_by_server: connectionBroke(new ConnectError("aborted", Code.Aborted)),
  invalid_argument: connectionBroke(new ConnectError("bad", Code.InvalidArgument)),
  not_found: connectionBroke(new ConnectError("none", Code.NotFound)),
  plain_error: connectionBroke(new Error("bug")),
};
console.log(JSON.stringify(out));
"""


def test_typescript_retries_a_broken_connection_and_nothing_else() -> None:
    build_clients()
    ts = CLIENTS / "ts"
    script = (
        'import { Code, ConnectError } from "@connectrpc/connect";\n'
        f'import {{ connectionBroke }} from "{ts / "build" / "js" / "broken.js"}";\n'
        + BROKEN_CASES
    )
    node = shutil.which("node")
    assert node, "node vanished after the build"
    done = subprocess.run(
        [node, "--input-type=module", "-e", script],
        cwd=ts,  # where @connectrpc/connect is installed
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == {
        "unavailable": True,
        "canceled": True,
        "aborted_by_reset": True,
        "aborted_by_server": False,
        "invalid_argument": False,
        "not_found": False,
        "plain_error": False,
    }
