"""`loyalty dead-letters`: events the projections could not apply."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from service.bootstrap import Container, build
from service.config import Settings


def _cmd_dead_letters(args: argparse.Namespace, settings: Settings) -> int:
    container = build(settings)
    try:
        if args.action == "show":
            return _show(container, args.position)
        if args.action == "dismiss":
            done = container.models.dismiss_dead_letter(args.position, args.note)
            print(f"{args.position}: " + ("dismissed" if done else "not open"))
            return 0 if done else 1
        if args.action == "retry":
            return _retry(container, args)
        _list(container, args)
        return 0
    finally:
        container.close()


def _show(container: Container, position: int) -> int:
    (event,) = container.events.read_positions([position]) or (None,)
    letter = next(
        (
            d
            for d in container.models.dead_letters(after=position - 1, limit=1)
            if d.position == position
        ),
        None,
    )
    if event is None or letter is None:
        print(f"no dead letter at position {position}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "position": letter.position,
                "event_id": letter.event_id,
                "customer_id": letter.customer_id,
                "type_name": letter.type_name,
                "reason": letter.reason,
                "raw": event.raw.decode("utf-8", "backslashreplace"),
            },
            indent=2,
        )
    )
    return 0


def _retry(container: Container, args: argparse.Namespace) -> int:
    from projections.deadletters import retry

    positions = (
        [d.position for d in container.models.dead_letters(limit=10**9)]
        if args.all
        else args.positions
    )
    failed = 0
    for position in positions:
        outcome = retry(container.models, container.events.read_positions, position)
        failed += not outcome.applied
        print(f"{position}: {outcome.detail}")
    return 1 if failed else 0


def _list(container: Container, args: argparse.Namespace) -> None:
    for d in container.models.dead_letters(limit=args.limit):
        line = {
            "position": d.position,
            "event_id": d.event_id,
            "customer_id": d.customer_id,
            "type_name": d.type_name,
            "reason": d.reason,
            "dismissed": d.dismissed,
        }
        print(
            json.dumps(line)
            if args.json
            else f"{d.position:>8}  {d.event_id}  {d.customer_id}  "
            f"{d.type_name}: {d.reason}"
            + (f"  [dismissed: {d.dismissed}]" if d.dismissed else "")
        )
    if not args.json:
        print(f"{container.models.dead_letter_count()} open dead letter(s)")


def add_parsers(sub: Any) -> None:
    d = sub.add_parser("dead-letters", help="events the projections could not apply")
    dsub = d.add_subparsers(dest="action", required=True)
    dl = dsub.add_parser("list", help="list dead letters")
    dl.add_argument("--json", action="store_true", help="one JSON object per line")
    dl.add_argument("--limit", type=int, default=1000)
    ds = dsub.add_parser("show", help="one dead letter with its stored event")
    ds.add_argument("position", type=int)
    dr = dsub.add_parser(
        "retry", help="apply dead letters again (after a fold fix); at most once"
    )
    dr.add_argument("positions", type=int, nargs="*", help="event positions")
    dr.add_argument("--all", action="store_true", help="every dead letter")
    dd = dsub.add_parser(
        "dismiss", help="stop counting a dead letter that will never apply"
    )
    dd.add_argument("position", type=int)
    dd.add_argument("--note", default="by operator", help="why, for the record")
    d.set_defaults(func=_cmd_dead_letters)
