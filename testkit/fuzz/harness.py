"""One service and one keep-alive client that every fuzz case goes through:
each request is sent, its answer checked against the oracle, and what it left
behind (a stored event, a quarantine row, nothing) read back directly."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from testkit.fuzz.oracle import SIG, TYPE, signature_is_valid
from testkit.fuzz.strategies import signature_for
from testkit.launch import ServiceProcess
from testkit.rawhttp import raw_http
from testkit.signing import SECRET
from testkit.webhooks import WEBHOOK_PATH

# --- the harness ------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: bytes


@dataclass
class Harness:
    svc: ServiceProcess
    client: httpx.Client
    store: Any
    quarantine: Any
    factory: Any
    signed: set[bytes] = field(default_factory=set)
    positions: dict[str, int] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    accepted: int = 0
    quarantined: int = 0
    head: int = 0
    last_quarantined: int = 0

    def send(
        self, body: bytes | Iterator[bytes], hdrs: Mapping[str, str | bytes | None]
    ) -> Answer:
        sent: dict[str, Any] = {k: v for k, v in hdrs.items() if v is not None}
        try:
            r = self.client.post(WEBHOOK_PATH, content=body, headers=sent)
            return Answer(r.status_code, r.content)
        except httpx.LocalProtocolError:
            assert isinstance(body, bytes)
            return self.send_raw(body, sent)

    def send_raw(self, body: bytes, hdrs: Mapping[str, str | bytes]) -> Answer:
        """For header values httpx refuses (leading/trailing blanks...)."""
        lines = [b"POST " + WEBHOOK_PATH.encode() + b" HTTP/1.1", b"host: 127.0.0.1"]
        lines.append(b"content-length: %d" % len(body))
        for k, v in hdrs.items():
            lines.append(
                k.encode() + b": " + (v if isinstance(v, bytes) else v.encode())
            )
        self.counts["(sent raw, bypassing httpx)"] += 1
        answer = raw_http(self.svc.http_port, b"\r\n".join(lines) + b"\r\n\r\n" + body)
        head, _, rest = answer.partition(b"\r\n\r\n")
        return Answer(int(head.split(b" ", 2)[1]), rest)

    def exchange(
        self,
        label: str,
        body: bytes,
        hdrs: Mapping[str, str | bytes | None],
        allowed: frozenset[int],
        *,
        chunked: bool = False,
        event_id: str | None = None,
    ) -> Answer:
        """Send one request and check the answer and its effects."""
        self.counts[label] += 1
        signature = next((v for k, v in hdrs.items() if k.lower() == SIG), None)
        if signature_is_valid(body, _text(signature)):
            self.signed.add(body)

        def chunks() -> Iterator[bytes]:
            for i in range(0, len(body), 8192):
                yield body[i : i + 8192]

        answer = self.send(chunks() if chunked else body, hdrs)
        self.statuses[answer.status] += 1
        assert answer.status < 500, (answer.status, answer.body[:300], body[:300])
        assert self.svc.proc is not None and self.svc.proc.poll() is None, "died"
        assert SECRET.encode() not in answer.body
        assert answer.status in allowed, (answer.status, answer.body[:300], body[:300])

        new_events = self.store.read(self.head, 100)
        new_quarantine = self.quarantine.list(100, self.last_quarantined)
        if answer.status == 200:
            reply = json.loads(answer.body)
            assert not new_quarantine
            assert event_id is not None
            if reply["status"] == "accepted":
                assert [(e.position, e.raw) for e in new_events] == [
                    (reply["position"], body)
                ]
                assert new_events[0].id == event_id
                assert event_id not in self.positions
                self.positions[event_id] = reply["position"]
                self.accepted += 1
                self.head = reply["position"]
            else:
                assert reply == {
                    "status": "duplicate",
                    "position": self.positions[event_id],
                }
                assert not new_events
        elif answer.status == 400:
            assert not new_events
            assert [q.body for q in new_quarantine] == [body]
            assert json.loads(answer.body)["error"]
            self.quarantined += 1
            self.last_quarantined = new_quarantine[0].id
        else:
            assert not new_events and not new_quarantine, answer.status
        return answer

    def summary(self, title: str, prefix: str) -> str:
        mine = {k: v for k, v in sorted(self.counts.items()) if k.startswith(prefix)}
        lines = [f"{title}: {sum(mine.values())} requests"]
        lines += [f"  {k[len(prefix) :] or '-'}: {v}" for k, v in mine.items()]
        text = "\n".join(lines)
        print("\n" + text)
        return text


def _text(value: str | bytes | None) -> str | None:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value


def signed_headers(body: bytes, style: str, event_type: str | bytes | None) -> dict:
    return {SIG: signature_for(body, style), TYPE: event_type,
            "content-type": "application/json"}  # fmt: skip
