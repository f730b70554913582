"""`loyalty customer|status|events|config`: look at what the service holds."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from service.bootstrap import build
from service.config import Settings


def _cmd_customer(args: argparse.Namespace, settings: Settings) -> int:
    from service.errors import NotFound
    from service.reads import CustomerReads
    from service.render import human, public

    container = build(settings)
    try:
        reads = CustomerReads(container.models, container.events)
        try:
            customer = (
                reads.lookup(args.key) if "@" in args.key else reads.get(args.key)
            )
        except NotFound as e:
            print(f"loyalty: {e}", file=sys.stderr)
            return 1
        print(json.dumps(public(customer), indent=2) if args.json else human(customer))
        return 0
    finally:
        container.close()


def _cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    container = build(settings)
    try:
        models = container.models
        head = container.events.head()
        applied = models.applied_position()
        status = {
            "backend": container.backend.name,
            "store": container.backend.where(),
            "head_position": head,
            "applied_position": applied,
            "lag": max(0, head - applied),
            "generation": models.current_generation(refresh=True),
            "rebuild_pending": models.pending_generation() or None,
            "customers": models.customer_count(),
            "dead_letters": models.dead_letter_count(),
            "quarantine_open": container.quarantine.open_count(),
        }
        if args.json:
            print(json.dumps(status))
        else:
            for key, value in status.items():
                print(f"{key:<17} {value if value is not None else '-'}")
        return 0
    finally:
        container.close()


def _cmd_events(args: argparse.Namespace, settings: Settings) -> int:
    from projections.events import parse_event_type

    container = build(settings)
    types = []
    for name in args.type:
        t = parse_event_type(name)
        if t is None and name.lower() != "unknown":
            print(f"loyalty: unknown event type {name!r}", file=sys.stderr)
            container.close()
            return 2
        types.append(t)
    after = args.after
    if args.tail is not None:
        after = max(0, container.events.head() - args.tail)
    shown = 0
    try:
        while True:
            batch = container.events.read(after, 500, types=types)
            for event in batch:
                after = event.position
                if args.customer and event.customer_id != args.customer:
                    continue
                if args.json:
                    print(event.raw.decode("utf-8", "backslashreplace"))
                else:
                    print(
                        f"{event.position:>8}  {event.created_at:%Y-%m-%d %H:%M:%S}  "
                        f"{event.customer_id:<20} {event.type_name:<24} {event.id}"
                    )
                shown += 1
                if args.limit and shown >= args.limit:
                    return 0
            if not batch:
                if not args.follow:
                    return 0
                sys.stdout.flush()
                time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        container.close()


def _cmd_config(args: argparse.Namespace, settings: None) -> int:
    from service.config import reference

    print(reference())
    return 0


def add_parsers(sub: Any) -> None:
    st = sub.add_parser(
        "status", help="positions, lag, dead letters, quarantine, store"
    )
    st.add_argument("--json", action="store_true", help="one JSON object")
    st.set_defaults(func=_cmd_status)
    ev = sub.add_parser("events", help="replay or tail the stored events")
    ev.add_argument("--after", type=int, default=0, help="start after this position")
    ev.add_argument("--tail", type=int, help="start N events before the head")
    ev.add_argument(
        "--type", action="append", default=[], help="only this event type (repeat)"
    )
    ev.add_argument("--customer", help="only this customer id")
    ev.add_argument("--follow", "-f", action="store_true", help="keep following")
    ev.add_argument("--limit", type=int, default=0, help="stop after N events")
    ev.add_argument("--json", action="store_true", help="print the verbatim bodies")
    ev.set_defaults(func=_cmd_events)
    cfg = sub.add_parser("config", help="print the configuration reference")
    cfg.set_defaults(func=_cmd_config, needs_settings=False)
    c = sub.add_parser("customer", help="print one customer's read model")
    c.add_argument("key", help="a customer id, or an email (contains @)")
    c.add_argument("--json", action="store_true", help="the full model as JSON")
    c.set_defaults(func=_cmd_customer)
