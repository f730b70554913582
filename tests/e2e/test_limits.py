"""Timeouts and size limits of the webhook ingress.

One service with REQUEST_TIMEOUT=2 s, KEEP_ALIVE_TIMEOUT=2 s and
MAX_BODY_BYTES=64 KiB (MAX_HEADER_BYTES stays at its 8 KiB default). Slow
and idle clients use raw sockets, so the test controls every byte and sees
exactly when the server hangs up; normal senders use httpx alongside.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.backends.sqlite.store import open_sqlite
from testkit.launch import ServiceProcess
from testkit.rawhttp import raw_http
from testkit.signing import headers
from testkit.webhooks import WEBHOOK_PATH, webhook_body

pytestmark = pytest.mark.slow

REQUEST_TIMEOUT = 2.0
KEEP_ALIVE_TIMEOUT = 2.0
MAX_BODY = 65_536
MAX_HEADER = 8192  # the default


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with ServiceProcess(
        tmp_path_factory.mktemp("limits"),
        REQUEST_TIMEOUT=str(REQUEST_TIMEOUT),
        KEEP_ALIVE_TIMEOUT=str(KEEP_ALIVE_TIMEOUT),
        MAX_BODY_BYTES=str(MAX_BODY),
    ) as svc:
        yield svc


def stored_and_quarantined(data_dir: Path) -> tuple[list[bytes], list[bytes]]:
    store, quarantine, factory = open_sqlite(data_dir)
    try:
        return (
            [e.raw for e in store.read(0, 10**6)],
            [q.body for q in quarantine.list(10**6)],
        )
    finally:
        factory.close()


def request_head(body: bytes, event_type: str, *, extra: bytes = b"") -> bytes:
    """The head of a signed POST of `body`; `extra` is more header lines, each
    ending in CRLF."""
    lines = [
        f"POST {WEBHOOK_PATH} HTTP/1.1",
        "host: 127.0.0.1",
        f"content-length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers(body, event_type).items()),
    ]
    return "\r\n".join(lines).encode() + b"\r\n" + extra + b"\r\n"


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


class Prober(threading.Thread):
    """Normal signed webhooks, one after another on fresh connections, while
    something else goes on; records each answer's status and latency."""

    def __init__(self, svc: ServiceProcess, prefix: str) -> None:
        super().__init__(daemon=True)
        self.svc = svc
        self.prefix = prefix
        self.done = threading.Event()
        self.results: list[tuple[int, float]] = []

    def run(self) -> None:
        i = 0
        while not self.done.is_set():
            i += 1
            body = webhook_body(f"{self.prefix}-{i}", "limits-prober", amount=1)
            started = time.monotonic()
            try:
                r = httpx.post(
                    self.svc.url + WEBHOOK_PATH,
                    content=body,
                    headers=headers(body, "Balance changed"),
                    timeout=10,
                )
                status = r.status_code
            except httpx.HTTPError:
                status = 0
            self.results.append((status, time.monotonic() - started))
            self.done.wait(0.1)

    def stop(self) -> list[tuple[int, float]]:
        self.done.set()
        self.join(15)
        return self.results


def trickle(
    port: int, first: bytes, rest: bytes, interval: float, give_up: float
) -> tuple[float, bytes | None, int]:
    """Send `first`, then `rest` one byte every `interval` seconds, until the
    server answers or hangs up (or `give_up` seconds pass). Returns (seconds
    the server let us go on for, what it answered or None, bytes trickled)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(first)
        started = time.monotonic()
        sent = 0
        while time.monotonic() - started < give_up:
            readable, _, _ = select.select([s], [], [], interval)
            if readable:
                try:
                    answer = s.recv(65536)
                except ConnectionError:
                    answer = b""
                return time.monotonic() - started, answer, sent
            if sent < len(rest):
                try:
                    s.sendall(rest[sent : sent + 1])
                except ConnectionError:
                    return time.monotonic() - started, b"", sent
                sent += 1
        return time.monotonic() - started, None, sent


# --- slow senders -----------------------------------------------------------


def test_slow_senders_do_not_starve_other_requests(service: ServiceProcess) -> None:
    """Ten connections trickle signed bodies byte by byte; meanwhile normal
    webhooks on other connections are each answered in well under a second."""
    body = webhook_body("slow-starve", "limits-slow", padding="p" * 300)
    prober = Prober(service, "starve")
    results: list[tuple[float, bytes | None, int]] = []

    def slow() -> None:
        results.append(
            trickle(
                service.http_port,
                request_head(body, "Balance changed"),
                body,
                interval=0.05,
                give_up=4.0,
            )
        )

    slowpokes = [threading.Thread(target=slow, daemon=True) for _ in range(10)]
    prober.start()
    for t in slowpokes:
        t.start()
    for t in slowpokes:
        t.join(20)
    answered = prober.stop()
    print(f"\nprober: {len(answered)} webhooks while 10 slow senders trickled")
    assert len(results) == 10
    # The slow senders are cut off at REQUEST_TIMEOUT (2 s): a loaded machine
    # fits a handful of probes (0.1 s apart) in that window, not always ten.
    assert len(answered) >= 5
    assert all(status == 200 for status, _ in answered), answered
    slowest = max(seconds for _, seconds in answered)
    print(f"prober: slowest answer {slowest * 1000:.0f} ms")
    assert slowest < 1.0, answered
    stored, _ = stored_and_quarantined(service.data_dir)
    assert body not in stored  # never completed, so never stored


@pytest.mark.parametrize("part", ["body", "head"])
def test_slow_sender_is_cut_off_after_request_timeout(
    service: ServiceProcess, part: str
) -> None:
    """A signed request trickled one byte every 50 ms (it would take > 10 s to
    send) is cut off REQUEST_TIMEOUT (2 s) after it started, give or take."""
    body = webhook_body(f"slow-cut-{part}", "limits-slow", padding="p" * 300)
    head = request_head(body, "Balance changed")
    if part == "body":
        first, rest = head, body
    else:
        first, rest = head[:10], head[10:] + body
    seconds, answer, sent = trickle(
        service.http_port, first, rest, interval=0.05, give_up=6.0
    )
    print(f"\nslow {part}: cut after {seconds:.2f} s, {sent} bytes, {answer!r}")
    assert answer is not None, f"not cut off after {seconds:.1f} s ({sent} bytes)"
    assert REQUEST_TIMEOUT - 0.5 <= seconds <= REQUEST_TIMEOUT + 1.0
    if answer:  # a courteous 408 before hanging up is fine; nothing else is
        assert status_of(answer) == 408, answer
    stored, quarantined = stored_and_quarantined(service.data_dir)
    assert body not in stored and body not in quarantined


# --- idle connections -------------------------------------------------------


def wait_for_close(s: socket.socket, limit: float) -> float:
    """Seconds until the server closes `s` (reads nothing else), or `limit`."""
    started = time.monotonic()
    s.settimeout(limit)
    try:
        data = s.recv(65536)
    except TimeoutError:
        return limit
    except ConnectionError:
        data = b""
    assert data == b"", data
    return time.monotonic() - started


def test_idle_keep_alive_connection_is_closed(service: ServiceProcess) -> None:
    with socket.create_connection(("127.0.0.1", service.http_port)) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        s.settimeout(5)
        answer = b""
        while not answer.endswith(b"}"):
            answer += s.recv(65536)
        assert status_of(answer) == 200
        assert b"keep-alive" in answer.lower()
        seconds = wait_for_close(s, KEEP_ALIVE_TIMEOUT + 5)
    print(f"\nidle keep-alive connection closed after {seconds:.2f} s")
    assert KEEP_ALIVE_TIMEOUT - 0.5 <= seconds <= KEEP_ALIVE_TIMEOUT + 1.0


def test_connection_that_never_sends_is_closed(service: ServiceProcess) -> None:
    with socket.create_connection(("127.0.0.1", service.http_port)) as s:
        seconds = wait_for_close(s, KEEP_ALIVE_TIMEOUT + REQUEST_TIMEOUT + 5)
    print(f"\nsilent connection closed after {seconds:.2f} s")
    assert seconds <= max(KEEP_ALIVE_TIMEOUT, REQUEST_TIMEOUT) + 1.0


def test_keep_alive_connection_is_reused_within_the_timeout(
    service: ServiceProcess,
) -> None:
    with httpx.Client(base_url=service.url, timeout=10) as client:
        ports = set()
        for i in range(3):
            body = webhook_body(f"reuse-{i}", "limits-reuse", amount=1)
            r = client.post(
                WEBHOOK_PATH,
                content=body,
                headers=headers(body, "Balance changed"),
            )
            assert r.status_code == 200
            stream = r.extensions["network_stream"]
            ports.add(stream.get_extra_info("client_addr"))
            time.sleep(KEEP_ALIVE_TIMEOUT / 4)
    assert len(ports) == 1  # one connection served all three


# --- header size ------------------------------------------------------------


def test_request_head_over_the_limit_is_rejected(service: ServiceProcess) -> None:
    body = webhook_body("big-head", "limits-head", amount=1)
    prober = Prober(service, "head")
    prober.start()
    try:
        answers = [
            raw_http(
                service.http_port,
                request_head(
                    body,
                    "Balance changed",
                    extra=b"x-padding: " + b"a" * 20_000 + b"\r\n",
                )
                + body,
            )
            for _ in range(5)
        ]
    finally:
        answered = prober.stop()
    for answer in answers:
        assert status_of(answer) in (400, 413, 431), answer[:200]
    assert answered and all(status == 200 for status, _ in answered), answered
    assert max(seconds for _, seconds in answered) < 1.0
    stored, quarantined = stored_and_quarantined(service.data_dir)
    assert body not in stored and body not in quarantined


def test_request_head_under_the_limit_is_accepted(service: ServiceProcess) -> None:
    body = webhook_body("fat-head", "limits-head", amount=1)
    answer = raw_http(
        service.http_port,
        request_head(
            body,
            "Balance changed",
            extra=b"x-padding: " + b"a" * (MAX_HEADER // 2) + b"\r\n",
        )
        + body,
    )
    assert status_of(answer) == 200, answer[:300]


def test_many_headers_over_the_limit_are_rejected(service: ServiceProcess) -> None:
    body = webhook_body("many-heads", "limits-head", amount=1)
    extra = b"".join(b"x-h%d: %s\r\n" % (i, b"v" * 40) for i in range(500))
    answer = raw_http(
        service.http_port, request_head(body, "Balance changed", extra=extra) + body
    )
    assert status_of(answer) in (400, 413, 431), answer[:200]
    stored, quarantined = stored_and_quarantined(service.data_dir)
    assert body not in stored and body not in quarantined


# --- body size --------------------------------------------------------------


def padded_body(event_id: str, size: int) -> bytes:
    """A valid envelope of exactly `size` bytes."""
    body = webhook_body(event_id, "limits-body", padding="")
    return webhook_body(event_id, "limits-body", padding="p" * (size - len(body)))


def test_body_at_the_limit_is_accepted(service: ServiceProcess) -> None:
    body = padded_body("body-at-limit", MAX_BODY)
    assert len(body) == MAX_BODY
    r = httpx.post(
        service.url + WEBHOOK_PATH,
        content=body,
        headers=headers(body, "Balance changed"),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    stored, _ = stored_and_quarantined(service.data_dir)
    assert body in stored


@pytest.mark.parametrize("size", [MAX_BODY + 1, 4 * MAX_BODY])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_body_over_the_limit_is_413(
    service: ServiceProcess, framing: str, size: int
) -> None:
    body = padded_body(f"body-over-{framing}-{size}", size)
    assert len(body) == size

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 4096):
            yield body[i : i + 4096]

    r = httpx.post(
        service.url + WEBHOOK_PATH,
        content=body if framing == "content-length" else chunks(),
        headers=headers(body, "Balance changed"),
        timeout=10,
    )
    assert r.status_code == 413, r.text
    if framing == "chunked":
        assert r.request.headers["transfer-encoding"] == "chunked"
    stored, quarantined = stored_and_quarantined(service.data_dir)
    assert body not in stored and body not in quarantined
    # The service is unharmed: the next request is served normally.
    ok = webhook_body(f"after-{framing}-{size}", "limits-body", amount=1)
    r = httpx.post(
        service.url + WEBHOOK_PATH, content=ok, headers=headers(ok, "Balance changed")
    )
    assert r.status_code == 200


def test_chunked_body_over_the_limit_with_raw_chunks_is_413(
    service: ServiceProcess,
) -> None:
    """Chunked framing written by hand: many small chunks adding up past the
    limit, so no single chunk header announces the size."""
    body = padded_body("raw-chunked-over", 2 * MAX_BODY)
    head = request_head(body, "Balance changed").replace(
        f"content-length: {len(body)}".encode(), b"transfer-encoding: chunked"
    )
    framed = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + 1000]), body[i : i + 1000])
        for i in range(0, len(body), 1000)
    )
    answer = raw_http(service.http_port, head + framed + b"0\r\n\r\n")
    assert status_of(answer) == 413, answer[:300]
    stored, quarantined = stored_and_quarantined(service.data_dir)
    assert body not in stored and body not in quarantined
