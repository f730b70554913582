"""The replay consumers of clients/ (TypeScript, Go), seen from outside: a
store to replay, the figures they must reach computed independently in
Python, and a running consumer read one JSON line at a time.

The figures (per customer, campaign and month of `createdAt`: points issued,
points redeemed, rewards redeemed and refunded) are computed here from each
stored event's verbatim body (`raw_json`, numbers read as `Decimal`), not
from the typed payload the consumers read, so the two readings check each
other.
"""

from __future__ import annotations

import dataclasses
import json
import queue
import signal
import subprocess
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Context, Decimal, localcontext
from pathlib import Path
from typing import Any

import grpc
from jericommerce.loyalty.v1 import event_pb2
from jericommerce.loyalty.v1 import event_service_pb2 as epb
from jericommerce.loyalty.v1 import event_service_pb2_grpc as egrpc

from testkit.traffic import Webhook, webhooks

NO_CAMPAIGN = "(none)"
# The store's events are spread over this many months of 2025 (the kit's
# traffic is a few days long), so the figures have months to tell apart.
MONTHS = 12

# Python's default context keeps 28 digits and would round the sum of
# 12345678901234567890 and 0.000000000000000001 (the service allows 30 digits
# on each side of the point).
EXACT = Context(prec=100)

Row = dict[str, Any]  # issued, redeemed (Decimal), redemptions, refunds (int)
Rows = dict[str, dict[str, dict[str, Row]]]  # customer -> campaign -> month -> row


def spread_over_months(hooks: Iterable[Webhook], count: int) -> Iterator[Webhook]:
    """The kit's webhooks with `createdAt` moved so that the `count` events
    cover MONTHS months, in order."""
    for seq, w in enumerate(hooks):
        body = json.loads(w.body)
        day = seq * (MONTHS * 30) // max(count, 1)
        body["createdAt"] = f"2025-{1 + day // 30:02d}-{1 + day % 28:02d}T12:00:00Z"
        yield dataclasses.replace(w, body=json.dumps(body).encode())


def load_store(
    data_dir: Path,
    count: int,
    customers: int,
    *,
    tag: str,
    quiet_tail: int = 0,
    quiet_type: str = "Reward refunded",
) -> int:
    """Append `count` realistic events straight into DATA_DIR's SQLite store
    through the event store's API (the ingress's own path after the HTTP
    layer, without HTTP), before any service runs there; the last
    `quiet_tail` of them hold no `quiet_type`. Returns the head position."""
    from service.backends.sqlite.store import open_sqlite
    from service.ingest import parse_envelope

    store, _quarantine, factory = open_sqlite(data_dir)
    try:
        hooks = spread_over_months(webhooks(count, customers, tag=tag), count)
        batch = []
        for seq, w in enumerate(hooks):
            if seq >= count - quiet_tail and w.type_name == quiet_type:
                continue
            batch.append(parse_envelope(w.body, w.type_name))
            if len(batch) == 1000:
                store.append(batch)
                batch = []
        if batch:
            store.append(batch)
        return int(store.head())
    finally:
        factory.close()


def _row(rows: Rows, body: dict[str, Any]) -> Row:
    created = datetime.fromisoformat(body["createdAt"])
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    month = created.astimezone(UTC).strftime("%Y-%m")
    campaign = body.get("campaignId") or NO_CAMPAIGN
    by_month = rows.setdefault(body["customerId"], {}).setdefault(campaign, {})
    return by_month.setdefault(
        month,
        {"issued": Decimal(0), "redeemed": Decimal(0), "redemptions": 0, "refunds": 0},
    )


def expected_rows(
    target: str, types: Iterable[int] = (), after_position: int = 0
) -> tuple[Rows, int]:
    """The figures per customer, from the verbatim bodies of a full replay
    (erasures applied as the stream reports them), and the last position."""
    wanted = set(types)
    rows: Rows = {}
    last = after_position
    with grpc.insecure_channel(target) as channel, localcontext(EXACT):
        request = epb.StreamEventsRequest(after_position=after_position)
        for item in egrpc.EventServiceStub(channel).StreamEvents(request, timeout=300):
            kind = item.WhichOneof("item")
            if kind == "customer_erased":
                rows.pop(item.customer_erased.customer_id, None)
                last = item.customer_erased.position
                continue
            if kind != "event":
                continue
            e = item.event
            last = e.position
            if e.redacted or (wanted and e.type not in wanted):
                continue
            body = json.loads(e.raw_json, parse_float=Decimal, parse_int=Decimal)
            props = body.get("properties") or {}
            if e.type == event_pb2.EVENT_TYPE_BALANCE_CHANGED:
                try:
                    amount = Decimal(str(props["amount"]))
                except (KeyError, ArithmeticError, ValueError):
                    continue  # no usable amount: no figure
                row = _row(rows, body)
                if amount > 0:
                    row["issued"] += amount
                elif amount < 0:
                    row["redeemed"] -= amount
            elif e.type == event_pb2.EVENT_TYPE_REWARD_REDEEMED:
                _row(rows, body)["redemptions"] += 1
            elif e.type == event_pb2.EVENT_TYPE_REWARD_REFUNDED:
                _row(rows, body)["refunds"] += 1
    return rows, last


def canonical(d: Decimal) -> str:
    """The canonical text of jericommerce.loyalty.v1.Decimal: no exponent,
    no trailing fraction zeros, never "-0"."""
    text = format(d.normalize(EXACT), "f") if d else "0"
    return text.removeprefix("-") if d == 0 else text


def as_json(rows: Rows) -> dict[str, Any]:
    """`rows` as the consumers write them in their state files."""
    return {
        cid: {
            campaign: {
                month: {
                    "issued": canonical(r["issued"]),
                    "redeemed": canonical(r["redeemed"]),
                    "redemptions": r["redemptions"],
                    "refunds": r["refunds"],
                }
                for month, r in months.items()
            }
            for campaign, months in campaigns.items()
        }
        for cid, campaigns in rows.items()
    }


def totals(rows: Rows) -> dict[str, Any]:
    """The figures summed over customers, as the consumers print them."""
    out: dict[str, dict[str, Row]] = {}
    for campaigns in rows.values():
        for campaign, months in campaigns.items():
            for month, r in months.items():
                into = out.setdefault(campaign, {}).setdefault(
                    month,
                    {
                        "issued": Decimal(0),
                        "redeemed": Decimal(0),
                        "redemptions": 0,
                        "refunds": 0,
                    },
                )
                with localcontext(EXACT):
                    for key in into:
                        into[key] += r[key]
    return as_json({"all": out})["all"]


class Consumer:
    """A running consumer program, its stdout read one JSON line at a time."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def next_line(self, timeout: float = 60) -> dict[str, Any] | None:
        """The next line, None at the end of the output."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"no line in {timeout} s; so far {self.seen}"
            ) from None
        if line is None:
            return None
        self.seen.append(json.loads(line))
        return self.seen[-1]

    def until(self, step: str, timeout: float = 60) -> dict[str, Any]:
        """The first line of `step` (failing on an error line or the end)."""
        while True:
            line = self.next_line(timeout)
            if line is None:
                raise AssertionError(
                    f"ended before {step!r}: {self.seen}\n{self.stderr()}"
                )
            assert line["step"] != "error", line
            if line["step"] == step:
                return line

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.close()

    def close(self, timeout: float = 60) -> int:
        """Waits for the exit (and the end of its output); its status."""
        code = self.proc.wait(timeout)
        self._pump.join(10)
        while self.next_line(0.1) is not None:  # what was left in the pipe
            pass
        return code

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def _wait_for_projections(target: str, head: int, timeout: float = 300) -> None:
    """Until the service's own projections have applied `head`, so a timed
    replay does not share the CPU with their catch-up."""
    import time

    from jericommerce.loyalty.v1 import projection_service_pb2 as ppb
    from jericommerce.loyalty.v1 import projection_service_pb2_grpc as pgrpc

    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        status = pgrpc.ProjectionServiceStub(channel).GetProjectionStatus
        while (
            status(ppb.GetProjectionStatusRequest(), timeout=10).applied_position < head
        ):
            if time.monotonic() > deadline:
                raise TimeoutError(f"projections did not reach {head}")
            time.sleep(0.2)


def main() -> None:
    """Replay rate of a consumer example over a fresh store, beside the rate
    at which the Python client merely reads the same stream:

    python -m testkit.consumers [--events 20000] [--lang go] [--runs 3]

    (after `make clients`)."""
    import argparse
    import resource
    import tempfile
    import time

    from testkit.clients import LANGUAGES, program
    from testkit.launch import ServiceProcess

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--customers", type=int, default=400)
    parser.add_argument("--lang", choices=LANGUAGES, default="go")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        head = load_store(Path(tmp) / "data", args.events, args.customers, tag="rate")
        with ServiceProcess(Path(tmp) / "data") as svc:
            _wait_for_projections(svc.grpc_target, head)
            for run in range(1, args.runs + 1):
                with grpc.insecure_channel(svc.grpc_target) as channel:
                    started = time.perf_counter()
                    stream = egrpc.EventServiceStub(channel).StreamEvents(
                        epb.StreamEventsRequest(), timeout=600
                    )
                    read = sum(1 for _ in stream)
                    python_took = time.perf_counter() - started
                state = Path(tmp) / f"state-{run}.json"
                argv = [*program(args.lang, "consumer"), "--target", svc.grpc_target]
                children = resource.getrusage(resource.RUSAGE_CHILDREN)
                started = time.perf_counter()
                done = subprocess.run(
                    [*argv, "--state", str(state)], capture_output=True, check=True
                )
                took = time.perf_counter() - started
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = (after.ru_utime + after.ru_stime) - (
                    children.ru_utime + children.ru_stime
                )
                last = json.loads(done.stdout.splitlines()[-1])
                assert last["step"] == "done" and int(last["position"]) == head, last
                events = last["received"]["events"]
                print(
                    f"run {run}: {args.lang} consumer {events} events in {took:.2f} s,",
                    f"{events / took:,.0f} events/s (process start included),",
                    f"its own CPU {cpu:.2f} s;",
                    f"Python client reading the stream: {read / python_took:,.0f}/s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
