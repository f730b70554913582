"""See the whole loyalty service work in one command (`make demo`).

    .venv/bin/python scripts/demo.py [--quick] [--customers N]

If nothing answers on HTTP_HOST:HTTP_PORT it starts `python -m service run` in
the background (log: DATA_DIR/demo-service.log, pid: DATA_DIR/demo-service.pid)
and leaves it running. Then it plays JeriCommerce: signed webhooks for a few
hundred customers (30 with --quick) across all 18 event types, over concurrent
connections, with retries of the same delivery, older events delivered after
newer ones, a few signed-but-invalid bodies (quarantined) and one poison event
(dead-lettered). Finally it reads everything back over gRPC, checks it, and
prints a summary and one customer's full read model.

Settings come from the environment, as the service's own do (HTTP_HOST,
HTTP_PORT, GRPC_HOST, GRPC_PORT, DATA_DIR, WEBHOOK_SECRET); without
WEBHOOK_SECRET the demo uses "demo-secret". It exits non-zero if the service
answers anything unexpected (a 5xx, a lost or doubled event, a wrong balance).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from jericommerce.loyalty.v1 import customer_service_pb2 as cpb
from jericommerce.loyalty.v1 import customer_service_pb2_grpc as cgrpc
from jericommerce.loyalty.v1 import event_service_pb2 as epb
from jericommerce.loyalty.v1 import event_service_pb2_grpc as egrpc
from jericommerce.loyalty.v1 import projection_service_pb2 as ppb
from jericommerce.loyalty.v1 import projection_service_pb2_grpc as pgrpc

from projections.events import EventType
from service.config import ConfigError, Settings
from testkit.demo.plan import UNKNOWN_TYPE, plan
from testkit.demo.sender import DemoError, check_answers, check_models, chunks, deliver
from testkit.demo.service import answering, local, start_service, wait_ready
from testkit.webhooks import WEBHOOK_PATH

DEMO_SECRET = "demo-secret"
CONCURRENCY = 16
READ_TIMEOUT = 60.0

# The 18 events JeriCommerce sends (docs/webhooks.md).
EVENT_TYPES = tuple(t.value for t in EventType)


# -- the tour ----------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_environ(require_secret=False)
    except ConfigError as e:
        print(f"demo: {e}", file=sys.stderr)
        return 2
    secret_env: dict[str, str] = {}
    if settings.webhook_secrets:
        secret = settings.webhook_secrets[0]
    else:
        secret = DEMO_SECRET.encode()
        secret_env["WEBHOOK_SECRET"] = DEMO_SECRET
        print(f'WEBHOOK_SECRET is not set: the demo signs with "{DEMO_SECRET}".')
    customers = args.customers or (30 if args.quick else 300)
    if customers < 1:
        print("demo: --customers must be at least 1", file=sys.stderr)
        return 2
    http_host, grpc_host = local(settings.http_host), local(settings.grpc_host)
    base = f"http://{http_host}:{settings.http_port}"
    grpc_target = f"{grpc_host}:{settings.grpc_port}"

    started: int | None = None
    if answering(base):
        print(f"A service is already answering on {base}: the demo uses it.")
        wait_ready(base)
    else:
        if settings.database_url:
            print("DATABASE_URL is set: the service will use PostgreSQL.")
        started = start_service(base, settings.data_dir, secret_env)
        print(f"Ready: webhooks on {base}, gRPC on {grpc_target}.")

    rng = random.Random()
    run_tag = f"{rng.getrandbits(16):04x}"
    planned = plan(customers, run_tag, rng)
    stories, on_time, poison = planned.stories, planned.on_time, planned.poison
    everything = planned.everything

    channel = grpc.insecure_channel(grpc_target)
    try:
        grpc.channel_ready_future(channel).result(timeout=10)
    except grpc.FutureTimeoutError:
        raise DemoError(f"nothing answers gRPC on {grpc_target}") from None
    with channel:
        projections = pgrpc.ProjectionServiceStub(channel)
        customers_api = cgrpc.CustomerServiceStub(channel)
        before = projections.GetProjectionStatus(
            ppb.GetProjectionStatusRequest(), timeout=10
        )

        print(
            f"Sending {len(everything)} signed webhooks for {customers} customers "
            f"over {CONCURRENCY} connections ...",
            flush=True,
        )
        url = base + WEBHOOK_PATH
        began = time.perf_counter()
        # The first alone (a wrong secret fails fast), then two rounds.
        asyncio.run(deliver(url, secret, [on_time[:1]], 1))
        check_answers(on_time[:1])
        asyncio.run(deliver(url, secret, [on_time[1:], planned.second], CONCURRENCY))
        took = time.perf_counter() - began
        check_answers(everything)
        highest = max(d.answer["position"] for d in everything if d.event_id)

        ids = [s.customer_id for s in stories]
        found: dict[str, Any] = {}
        for part in chunks(ids, 1000):
            answer = customers_api.BatchGetCustomers(
                cpb.BatchGetCustomersRequest(customer_ids=part, min_position=highest),
                timeout=READ_TIMEOUT,
            )
            found.update((c.customer_id, c) for c in answer.customers)
        check_models(stories, found)
        showcase = customers_api.GetCustomer(
            cpb.GetCustomerRequest(
                customer_id=stories[0].customer_id, min_position=highest
            ),
            timeout=READ_TIMEOUT,
        )
        status = projections.GetProjectionStatus(
            ppb.GetProjectionStatusRequest(), timeout=10
        )
        head = egrpc.EventServiceStub(channel).GetHeadPosition(
            epb.GetHeadPositionRequest(), timeout=10
        )
    dead = status.dead_letters - before.dead_letters
    if dead < 1:
        raise DemoError(
            f"the poison event (position {poison.answer['position']}) was not "
            "dead-lettered"
        )
    if status.applied_position < highest:
        raise DemoError(
            f"projections applied {status.applied_position} < {highest} after "
            "GetCustomer waited for it"
        )

    sent = Counter(d.event_type for d in everything if d.event_id and not d.copy)
    answers = Counter(d.answer.get("status") for d in everything if d.status == 200)
    summary = [
        (
            "deliveries",
            len(everything),
            f"in {took:.1f} s over {CONCURRENCY} connections",
        ),
        ("accepted", answers["accepted"], "each event stored once, durably"),
        ("duplicates", answers["duplicate"], "retries: the first copy's position"),
        ("out of order", sum(d.late for d in everything), "older after newer"),
        ("rejected 400", sum(d.status == 400 for d in everything), "quarantined"),
        ("event types", sum(1 for t in EVENT_TYPES if sent[t]), "of 18 sent"),
        ("unknown type", sent[UNKNOWN_TYPE], f'"{UNKNOWN_TYPE}": kept for replay'),
        ("customers", len(found), "read back over gRPC, all as sent"),
        ("poison", 1, f'amount "lots", position {poison.answer["position"]}'),
        ("head position", head.position, "EventService.GetHeadPosition"),
        ("applied", status.applied_position, "ProjectionService.GetProjectionStatus"),
        ("lag", status.lag, "events stored but not yet applied"),
        ("dead letters", status.dead_letters, f"+{dead} (the poison)"),
    ]
    print("\nSummary")
    for label, value, note in summary:
        print(f"  {label:<14}{value:>7}  {note}")
    print("\nSent, by event type (first copies):")
    cells = [f"{t:<24}{sent[t]:>4}" for t in EVENT_TYPES]
    for row in range(0, len(cells), 3):
        print("  " + "   ".join(cells[row : row + 3]))

    s = stories[0]
    print(
        f"\nOne customer, {s.name} <{s.email}>, read over gRPC with "
        f"CustomerService.GetCustomer(min_position={highest}):"
    )
    for note in s.notes:
        print(f"  ({note}: the model is the same as in order)")
    print(
        json_format.MessageToJson(
            showcase,
            preserving_proto_field_name=True,
            indent=2,
            ensure_ascii=False,
            unquote_int64_if_possible=True,
        )
    )

    cli = cli_prefix(settings)
    request = json.dumps({"customer_id": s.customer_id, "min_position": highest})
    print("\nNext steps:")
    print(f"  {cli} customer {s.email}")
    print(f"  curl -s {base}/metrics | grep loyalty_")
    print(
        f"  grpcurl -plaintext -d {shlex.quote(request)} {grpc_target} "
        "jericommerce.loyalty.v1.CustomerService/GetCustomer"
    )
    print(
        "  More: the CLI's status, events, quarantine list and dead-letters list;"
        " docs/runbook.md."
    )
    if started is not None:
        pid_file = shlex.quote(str(settings.data_dir / "demo-service.pid"))
        print(
            f"\nThe service keeps running (pid {started}, log "
            f"{settings.data_dir / 'demo-service.log'}). Stop it with:\n"
            f"  kill $(cat {pid_file})"
        )
    else:
        print(f"\nThe demo used the service already running on {base}, and left it.")
    return 0


def cli_prefix(settings: Settings) -> str:
    """How to run the CLI against the same store, from the current directory."""
    python = Path(sys.executable)
    try:
        shown = str(python.relative_to(Path.cwd()))
    except ValueError:
        shown = str(python)
    env = []
    if not settings.database_url and "DATA_DIR" in os.environ:
        env.append(f"DATA_DIR={shlex.quote(os.environ['DATA_DIR'])}")
    return " ".join([*env, shlex.quote(shown), "-m", "service"])


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Start the loyalty service if needed, send it realistic "
        "signed JeriCommerce traffic and show what it made of it."
    )
    parser.add_argument(
        "--quick", action="store_true", help="30 customers instead of 300"
    )
    parser.add_argument("--customers", type=int, help="how many customers to invent")
    args = parser.parse_args()
    try:
        return run(args)
    except DemoError as e:
        print(f"\ndemo: FAILED: {e}", file=sys.stderr)
        return 1
    except grpc.RpcError as e:
        print(f"\ndemo: FAILED: gRPC {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
