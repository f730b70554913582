"""Personal data stays private and secrets stay secret.

A service (signing secrets in rotation, at LOG_LEVEL INFO and again at
DEBUG) takes signed events for customers with distinctive emails, names and
phone numbers, some invalid (quarantined), one poison (dead-lettered), some
forged; they are read back over gRPC, and the operators' CLI lists the
quarantine and the dead letters. Then every line the service logged must be a
JSON object and mention none of those personal values, nor any secret; error
answers (HTTP and gRPC) and CLI listings must not carry the secrets either.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest

from testkit.launch import ServiceProcess
from testkit.pii.people import (
    NEW_SECRET,
    OLD_SECRET,
    PEOPLE,
    PERSONAL,
    SECRETS,
    STRANGER,
    UNKNOWN_EMAIL,
    leaks,
)
from testkit.pii.play import play
from testkit.pii.scenario import Scenario, decoded, log_lines

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["INFO", "DEBUG"])
def scenario(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    svc = ServiceProcess(
        tmp_path_factory.mktemp(f"pii-{request.param.lower()}"),
        WEBHOOK_SECRET=f"{OLD_SECRET},{NEW_SECRET}",
        LOG_LEVEL=request.param,
    )
    scenario = Scenario(svc)
    with svc:
        play(scenario)
    scenario.log = svc.log()  # after a clean stop: everything is flushed
    assert svc.proc is not None and svc.proc.returncode is not None
    yield scenario


# --- the reads worked, so the scan below means something --------------------


def test_personal_data_went_through_the_service(scenario: Scenario) -> None:
    for p in PEOPLE:
        c = scenario.customers[p.customer_id]
        assert (c.email, c.first_name, c.last_name, c.phone_number) == (
            p.email,
            p.first_name,
            p.last_name,
            p.phone,
        )
        assert scenario.found_by_email[p.email] == p.customer_id
    assert len(log_lines(scenario)) >= 3


# --- logs -------------------------------------------------------------------


def test_every_log_line_is_a_json_object(scenario: Scenario) -> None:
    for line in log_lines(scenario):
        assert isinstance(json.loads(line), dict), line


def test_logs_hold_no_personal_data(scenario: Scenario) -> None:
    found = {
        line[:300]: leaked
        for line in log_lines(scenario)
        if (leaked := leaks(decoded(line), PERSONAL))
    }
    assert not found


def test_logs_hold_no_secret(scenario: Scenario) -> None:
    assert not leaks(scenario.log, list(SECRETS))
    for done in scenario.cli.values():
        assert not leaks(done.stderr, list(SECRETS))


def test_cli_logs_are_json_and_hold_no_personal_data(scenario: Scenario) -> None:
    for args, done in scenario.cli.items():
        for line in done.stderr.splitlines():
            if line.strip():
                assert isinstance(json.loads(line), dict), (args, line)
                assert not leaks(decoded(line), PERSONAL), (args, line)


# --- answers ----------------------------------------------------------------


def test_http_error_answers_hold_no_secret_nor_personal_data(
    scenario: Scenario,
) -> None:
    statuses = sorted({status for status, _, _ in scenario.http_errors})
    assert {400, 401, 413} <= set(statuses), statuses
    for status, head, body in scenario.http_errors:
        text = (head + body).decode("utf-8", "replace")
        assert not leaks(text, list(SECRETS)), (status, text)
        if status in (400, 401, 413):  # answers to webhooks: short reasons
            assert not leaks(text, PERSONAL), (status, text)


def test_unauthorized_answers_say_nothing_of_why(scenario: Scenario) -> None:
    bodies = {body for status, _, body in scenario.http_errors if status == 401}
    assert len(bodies) == 1, bodies  # the same answer whatever was wrong


def test_grpc_errors_hold_no_secret_and_do_not_echo_unknown_emails(
    scenario: Scenario,
) -> None:
    assert len(scenario.grpc_errors) >= 5
    for code, message, details in scenario.grpc_errors:
        text = message + details.decode("utf-8", "replace")
        assert not leaks(text, list(SECRETS)), (code, text)
        assert code != grpc.StatusCode.UNKNOWN
    lookups = scenario.grpc_errors[:3]  # LookupCustomer of unknown emails
    for code, message, details in lookups:
        assert code == grpc.StatusCode.NOT_FOUND
        text = message + details.decode("utf-8", "replace")
        assert not leaks(text, [UNKNOWN_EMAIL, STRANGER.email]), text


def test_cli_listings_hold_no_secret_nor_personal_data(scenario: Scenario) -> None:
    for args, done in scenario.cli.items():
        assert not leaks(done.stdout, list(SECRETS)), args
        if args.startswith(("quarantine list", "dead-letters list")):
            assert not leaks(done.stdout, PERSONAL), (args, done.stdout)


def test_metrics_and_probes_hold_no_secret_nor_personal_data(
    scenario: Scenario,
) -> None:
    for name, answer in scenario.extra_outputs.items():
        text = answer.decode("utf-8", "replace")
        assert not leaks(text, list(SECRETS)), name
        assert not leaks(text, PERSONAL), name
