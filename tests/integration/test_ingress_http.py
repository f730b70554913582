"""The webhook ingress over real HTTP, in this process: the Sanic app and its
protocol as the service runs them, with the store replaced by lists, so
each case is quick and can see what was stored, quarantined and logged.

Covers the refusals that need the HTTP layer: bodies with a repeated key
or an over-long id (400, quarantined), bad framing (its own 400 text),
timeouts (held within a second of the setting) and answers and log lines
that never repeat a value from the request.
"""

from __future__ import annotations

import io
import json
import logging
import select
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pytest

from service.adapters.sanic import RedactProtocolErrors
from service.eventstore import Appended
from service.ingest import Envelope
from service.metrics import Metrics
from service.webhook import Ingress, create_app
from testkit.rawhttp import raw_http
from testkit.sanic_thread import serving
from testkit.signing import SECRET, headers, sign
from testkit.webhooks import WEBHOOK_PATH, webhook_body

PATH = WEBHOOK_PATH
REQUEST_TIMEOUT = 2.0
KEEP_ALIVE_TIMEOUT = 3.0  # differs, so each deadline is told apart
CANARY = "someone.private@example.com"


@dataclass
class Ingress1:
    """One running ingress and what it kept."""

    port: int
    stored: list[Envelope] = field(default_factory=list)
    quarantined: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture(scope="module")
def ingress() -> Iterator[Ingress1]:
    kept = Ingress1(port=0)

    async def submit(envelope: Envelope) -> Appended:
        kept.stored.append(envelope)
        return Appended("accepted", len(kept.stored))

    def quarantine(reason: str, hdrs: Mapping[str, str], body: bytes) -> int:
        kept.quarantined.append((reason, dict(hdrs), body))
        return len(kept.quarantined)

    async def ready() -> dict[str, bool]:
        return {"store": True}

    app = create_app(
        Ingress(
            secrets=(SECRET.encode(),),
            max_body_bytes=65_536,
            max_header_bytes=8192,
            max_id_length=256,
            request_timeout=REQUEST_TIMEOUT,
            keep_alive_timeout=KEEP_ALIVE_TIMEOUT,
            submit=submit,
            quarantine=quarantine,
            ready=ready,
            metrics=Metrics(),
        )
    )
    with serving(app) as port:
        kept.port = port
        yield kept


def post(port: int, body: bytes, hdrs: Mapping[str, str], target: str = PATH) -> bytes:
    lines = [
        f"POST {target} HTTP/1.1",
        "host: 127.0.0.1",
        f"content-length: {len(body)}",
    ]
    lines += [f"{k}: {v}" for k, v in hdrs.items()]
    return raw_http(port, "\r\n".join(lines).encode() + b"\r\n\r\n" + body)


def status_and_json(answer: bytes) -> tuple[int, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


# --- one reading of every body, bounded ids -----------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            b'{"id":"dupA","customerId":"c","createdAt":"2026-03-08T12:00:00Z",'
            b'"id":"dupB"}',
            'body repeats the key "id" in one JSON object',
        ),
        (
            b'{"id":"d2","customerId":"c","createdAt":"2026-03-08T12:00:00Z",'
            b'"properties":{"email":"a@x","email":"b@x"}}',
            "body repeats a key in one JSON object",
        ),
        (webhook_body("i" * 257), "id is longer than 256 characters"),
        (
            webhook_body("long-c", "c" * 1_000),
            "customerId is longer than 256 characters",
        ),
    ],
)
def test_signed_ambiguous_or_oversized_ids_are_400_and_quarantined(
    ingress: Ingress1, body: bytes, reason: str
) -> None:
    stored = len(ingress.stored)
    status, answer = status_and_json(
        post(ingress.port, body, headers(body, "Balance changed"))
    )
    assert (status, answer) == (400, {"error": reason})
    assert len(ingress.stored) == stored
    assert ingress.quarantined[-1][0] == reason
    assert ingress.quarantined[-1][2] == body  # the raw request, byte for byte


def test_id_at_the_limit_is_stored(ingress: Ingress1) -> None:
    body = webhook_body("i" * 256, "c" * 256)
    status, answer = status_and_json(
        post(ingress.port, body, headers(body, "Balance changed"))
    )
    assert status == 200 and answer["status"] == "accepted"
    assert ingress.stored[-1].raw == body


# --- bad framing gets its own text --------------------------------------------


def chunked_post(body_bytes: bytes, signed_body: bytes) -> bytes:
    hdrs = headers(signed_body, "Balance changed")
    lines = [f"POST {PATH} HTTP/1.1", "host: 127.0.0.1", "transfer-encoding: chunked"]
    lines += [f"{k}: {v}" for k, v in hdrs.items()]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body_bytes


@pytest.mark.parametrize(
    "framing",
    [
        b"zz\r\n{}\r\n0\r\n\r\n",  # size is not hex
        b"-2\r\n{}\r\n0\r\n\r\n",  # negative size
        b"2\r\n{}\r\n0\r\nx-trailer: 1\r\n\r\n",  # a trailer (smuggling risk)
        b"2;" + b"x" * 80,  # a size line with no end in sight
    ],
)
def test_bad_chunked_framing_has_its_own_400(ingress: Ingress1, framing: bytes) -> None:
    quarantined, stored = len(ingress.quarantined), len(ingress.stored)
    answer = raw_http(ingress.port, chunked_post(framing, b"{}"))
    assert status_and_json(answer) == (
        400,
        {"error": "invalid chunked framing in the request body"},
    ), answer
    assert b"connection: close" in answer.lower()
    assert (len(ingress.quarantined), len(ingress.stored)) == (quarantined, stored)


def test_good_chunked_framing_is_stored(ingress: Ingress1) -> None:
    body = webhook_body("chunked-ok")
    framed = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    answer = raw_http(ingress.port, chunked_post(framed, body))
    assert status_and_json(answer)[0] == 200, answer
    assert ingress.stored[-1].raw == body


@pytest.mark.parametrize(
    ("request_bytes", "text"),
    [
        (
            f"GET {CANARY} HTTP/1.1\r\nhost: x\r\n\r\n",
            "request target is not a valid URL",
        ),
        (
            f"GET /{CANARY}/é HTTP/1.1\r\nhost: x\r\n\r\n",
            "request target is not a valid URL",
        ),
        (
            f"POST {PATH} HTTP/1.1\r\nhost: x\r\ncontent-length: {CANARY}\r\n\r\n",
            "invalid Content-Length header",
        ),
        (
            f"GET /{CANARY} HTTP/9.9\r\nhost: x\r\n\r\n",
            "request head is not valid HTTP/1.1",
        ),
        (f"GET /{CANARY}?email={CANARY} HTTP/1.1\r\nhost: x\r\n\r\n", "not found"),
        (
            f"GET {PATH}?email={CANARY} HTTP/1.1\r\nhost: x\r\n\r\n",
            "method not allowed",
        ),
        (
            f"POST {PATH} HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n"
            f"expect: {CANARY}\r\n\r\n{{}}",
            "expectation failed",
        ),
    ],
)
def test_unreadable_requests_get_a_fixed_text(
    ingress: Ingress1, request_bytes: str, text: str
) -> None:
    answer = raw_http(ingress.port, request_bytes.encode())
    status, body = status_and_json(answer)
    assert 400 <= status < 500 and body == {"error": text}, answer
    assert CANARY.encode() not in answer


# --- no value from the request in an answer or a log line -----------------------


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    """Every log line the service would write (through its redacting filter),
    at DEBUG, as text with tracebacks."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactProtocolErrors())
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_no_request_value_in_answers_or_logs(
    ingress: Ingress1, log_text: io.StringIO
) -> None:
    """The canary goes everywhere a sender can put it; it comes back nowhere."""
    answers = []
    canary_sig = sign(b"x" + CANARY.encode())
    bodies = [
        # repeated key, over-long id, bad createdAt, not JSON, unsigned
        b'{"id":"%s","customerId":"c","createdAt":"2026-01-01","id":"%s"}'
        % (CANARY.encode(), CANARY.encode()),
        webhook_body(CANARY * 20, CANARY),
        webhook_body(CANARY, CANARY, created_at=CANARY),
        CANARY.encode(),
    ]
    for body in bodies:
        answers.append(post(ingress.port, body, headers(body, CANARY)))
    body = webhook_body(CANARY)
    answers.append(post(ingress.port, body, {"x-jericommerce-hmac-sha256": canary_sig}))
    answers.append(post(ingress.port, body, headers(body, "x"), f"{PATH}?e={CANARY}"))
    answers.append(raw_http(ingress.port, f"GET /{CANARY} HTTP/1.1\r\n\r\n".encode()))
    answers.append(raw_http(ingress.port, chunked_post(CANARY.encode() + b"\r\n", b"")))
    # A client that hangs up while its request is being handled.
    with socket.create_connection(("127.0.0.1", ingress.port)) as s:
        s.sendall(
            f"POST {PATH}?e={CANARY} HTTP/1.1\r\nhost: x\r\n"
            f"content-length: 100\r\n\r\n{CANARY}".encode()
        )
    time.sleep(0.3)
    statuses = [int(a.split(b" ", 2)[1]) for a in answers]
    assert statuses == [400, 400, 400, 400, 401, 200, 404, 400], statuses
    for answer in answers:
        assert CANARY.encode() not in answer, answer
        assert canary_sig.encode() not in answer
    logged = log_text.getvalue()
    assert CANARY not in logged and canary_sig not in logged, logged
    for reason, _, _ in ingress.quarantined:
        assert CANARY not in reason


# --- timeouts hold to the setting ---------------------------------------------


def trickle(
    port: int, first: bytes, rest: bytes, give_up: float
) -> tuple[float, bytes]:
    """Connect, stay idle a moment (Sanic's own checks then run out of step
    with the request's deadline), send `first`, then `rest` a byte every
    50 ms until the server answers or hangs up; (seconds from the first
    byte, what it answered)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        time.sleep(0.3)
        s.sendall(first)
        started = time.monotonic()
        sent = 0
        while time.monotonic() - started < give_up:
            if select.select([s], [], [], 0.05)[0]:
                try:
                    return time.monotonic() - started, s.recv(65536)
                except ConnectionError:
                    return time.monotonic() - started, b""
            if sent < len(rest):
                s.sendall(rest[sent : sent + 1])
                sent += 1
        raise AssertionError(f"not cut off after {give_up} s")


@pytest.mark.parametrize("part", ["head", "body"])
def test_slow_sender_is_cut_off_within_a_second_of_the_timeout(
    ingress: Ingress1, part: str
) -> None:
    """Sanic alone looks at the clock every half timeout: 2 s were held
    as up to 3 s (15 s as 22.5 s). Now the cut comes at the deadline."""
    body = webhook_body(f"slow-{part}", padding="p" * 300)
    head = (
        f"POST {PATH} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers(body, "Balance changed").items())
        + "\r\n"
    ).encode()
    first, rest = (head[:10], head[10:] + body) if part == "head" else (head, body)
    seconds, answer = trickle(ingress.port, first, rest, give_up=REQUEST_TIMEOUT + 5)
    print(f"\nslow {part}: cut off after {seconds:.2f} s (REQUEST_TIMEOUT 2 s)")
    assert REQUEST_TIMEOUT - 0.1 <= seconds <= REQUEST_TIMEOUT + 0.5
    if answer:
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert CANARY.encode() not in answer


def test_idle_keep_alive_connection_is_closed_within_a_second(
    ingress: Ingress1,
) -> None:
    with socket.create_connection(("127.0.0.1", ingress.port)) as s:
        time.sleep(0.4)  # out of step with Sanic's own checks, as above
        s.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        s.settimeout(5)
        answer = b""
        while not answer.endswith(b"}"):
            answer += s.recv(65536)
        started = time.monotonic()
        s.settimeout(KEEP_ALIVE_TIMEOUT + 5)
        assert s.recv(65536) == b""
        seconds = time.monotonic() - started
    print(f"\nidle keep-alive: closed after {seconds:.2f} s (KEEP_ALIVE_TIMEOUT 3 s)")
    assert KEEP_ALIVE_TIMEOUT - 0.1 <= seconds <= KEEP_ALIVE_TIMEOUT + 0.5


def test_request_after_an_idle_spell_gets_its_own_full_timeout(
    ingress: Ingress1,
) -> None:
    """The idle wait (keep-alive deadline 3 s) is not counted against the
    next request, and its shorter deadline (2 s) is kept, not the 3 s."""
    body = webhook_body("after-idle", padding="p" * 300)
    head = (
        f"POST {PATH} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", ingress.port), timeout=10) as s:
        time.sleep(1.5)  # idle, connected
        s.sendall(head)
        started = time.monotonic()
        sent = 0
        while not select.select([s], [], [], 0.05)[0]:
            s.sendall(body[sent : sent + 1])
            sent += 1
        seconds = time.monotonic() - started
        answer = s.recv(65536)
    print(f"\nafter 1.5 s idle: request cut off after {seconds:.2f} s")
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert REQUEST_TIMEOUT - 0.1 <= seconds <= REQUEST_TIMEOUT + 0.5
