"""`loyalty quarantine`: signed webhooks that could not be stored."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from service.bootstrap import Container, build
from service.config import Settings
from service.quarantine import Quarantine, QuarantinedRequest


def _cmd_quarantine(args: argparse.Namespace, settings: Settings) -> int:
    container = build(settings)
    try:
        q = container.quarantine
        if args.action == "dismiss":
            done = q.resolve(args.id, f"dismissed: {args.note}")
            print(f"{args.id}: " + ("dismissed" if done else "not open"))
            return 0 if done else 1
        if args.action == "retry":
            return _retry(args, q, container)
        if args.action == "show":
            return _show(q, args.id)
        if args.action == "purge":
            days = args.older_than_days
            if days is None:  # 0 is a value (everything), not "unset"
                days = settings.quarantine_retention_days
            cutoff = datetime.now(UTC) - timedelta(days=days)
            purged = q.purge(cutoff)
            container.privacy().scrub()
            print(
                f"purged {purged} quarantined request(s) received before {cutoff:%F %T}"
            )
            return 0
        _list(q, args.json)
        return 0
    finally:
        container.close()


def _retry(args: argparse.Namespace, q: Quarantine, container: Container) -> int:
    from service.reprocess import reprocess

    ids = [i.id for i in q if not i.resolution] if args.all else args.ids
    if not ids:
        print("nothing to re-process", file=sys.stderr)
    failed = 0
    for request_id in ids:
        outcome = reprocess(
            q,
            container.events,
            request_id,
            max_id_length=container.settings.max_id_length,
        )
        failed += not outcome.stored
        print(f"{request_id}: {outcome.detail}")
    return 1 if failed else 0


def _show(q: Quarantine, request_id: int) -> int:
    item = q.get(request_id)
    if item is None:
        print(f"no quarantined request {request_id}", file=sys.stderr)
        return 1
    full = {
        **_quarantined(item),
        "headers": item.headers,
        "body": item.body.decode("utf-8", "backslashreplace"),
    }
    print(json.dumps(full, indent=2))
    return 0


def _list(q: Quarantine, as_json: bool) -> None:
    items = list(q)
    if as_json:
        for item in items:
            print(json.dumps(_quarantined(item)))
        return
    print(f"{len(items)} quarantined request(s)")
    for item in items:
        print(
            f"{item.id:>6}  {item.received_at:%Y-%m-%d %H:%M:%S}  "
            f"{len(item.body):>8} B  {item.reason}"
            + (f"  [{item.resolution}]" if item.resolution else "")
        )


def _quarantined(item: QuarantinedRequest) -> dict[str, object]:
    return {
        "id": item.id,
        "received_at": item.received_at.isoformat(),
        "reason": item.reason,
        "bytes": len(item.body),
        "resolution": item.resolution,
    }


def _days(raw: str) -> int:
    try:
        days = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {raw!r}") from None
    if days < 0:
        raise argparse.ArgumentTypeError("days cannot be negative")
    return days


def add_parsers(sub: Any) -> None:
    q = sub.add_parser("quarantine", help="signed webhooks that could not be stored")
    qsub = q.add_subparsers(dest="action", required=True)
    ql = qsub.add_parser("list", help="list quarantined requests")
    ql.add_argument("--json", action="store_true", help="one JSON object per line")
    qs = qsub.add_parser("show", help="show one quarantined request in full")
    qs.add_argument("id", type=int)
    qr = qsub.add_parser(
        "retry", help="parse quarantined requests again and store those now valid"
    )
    qr.add_argument("ids", type=int, nargs="*", help="request ids")
    qr.add_argument("--all", action="store_true", help="every open request")
    qd = qsub.add_parser(
        "dismiss", help="close a request that will never be valid (keeps it listed)"
    )
    qd.add_argument("id", type=int)
    qd.add_argument("--note", default="by operator", help="why, for the record")
    qp = qsub.add_parser(
        "purge", help="delete requests older than the retention period"
    )
    qp.add_argument(
        "--older-than-days",
        type=_days,
        help="default: QUARANTINE_RETENTION_DAYS; 0 purges every request",
    )
    q.set_defaults(func=_cmd_quarantine)
