"""Request lines the HTTP parser cannot read, one holding somebody's email:
answered 400, and logged as JSON without the personal data."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from testkit.launch import ServiceProcess
from testkit.pii.people import NEW_SECRET, OLD_SECRET, PERSONAL, STRANGER, leaks
from testkit.pii.scenario import Scenario, log_lines
from testkit.rawhttp import raw_http
from testkit.webhooks import WEBHOOK_PATH

pytestmark = pytest.mark.slow


MALFORMED = (
    # a request target that is not a URL: somebody's email
    f"GET {STRANGER.email} HTTP/1.1\r\nhost: x\r\n\r\n".encode(),
    # a control character inside the query string
    f"POST {WEBHOOK_PATH}?email={STRANGER.email}\x01 HTTP/1.1\r\nhost: x\r\n"
    "content-length: 2\r\n\r\n{}".encode(),
)


@pytest.fixture(scope="module")
def malformed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    svc = ServiceProcess(
        tmp_path_factory.mktemp("pii-malformed"),
        WEBHOOK_SECRET=f"{OLD_SECRET},{NEW_SECRET}",
    )
    scenario = Scenario(svc)
    with svc:
        for request in MALFORMED:
            answer = raw_http(svc.http_port, request)
            scenario.http_errors.append((0, *answer.partition(b"\r\n\r\n")[::2]))
        assert httpx.get(svc.url + "/healthz", timeout=5).status_code == 200
    scenario.log = svc.log()
    yield scenario


def test_unparseable_request_targets_are_not_logged(malformed: Scenario) -> None:
    found = [line[:300] for line in log_lines(malformed) if leaks(line, PERSONAL)]
    assert not found


def test_unparseable_request_targets_keep_the_log_json(malformed: Scenario) -> None:
    assert malformed.log
    for line in log_lines(malformed):
        assert isinstance(json.loads(line), dict), line


def test_unparseable_request_targets_are_answered_400(malformed: Scenario) -> None:
    for _, head, body in malformed.http_errors:
        assert head.startswith(b"HTTP/1.1 400 "), (head, body)
        assert json.loads(body) == {"error": "request target is not a valid URL"}
