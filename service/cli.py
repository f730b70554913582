"""`loyalty` / `python -m service`: run the service and operate it."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from service import logs
from service.bootstrap import build
from service.config import ConfigError, Settings


def _cmd_run(args: argparse.Namespace) -> int:
    from service.runtime import serve

    settings = Settings.from_environ()
    container = build(settings)
    try:
        asyncio.run(serve(container))
    finally:
        container.close()
    return 0


def _cmd_quarantine(args: argparse.Namespace) -> int:
    container = build(Settings.from_environ(require_secret=False))
    try:
        q = container.quarantine
        if args.action == "show":
            item = q.get(args.id)
            if item is None:
                print(f"no quarantined request {args.id}", file=sys.stderr)
                return 1
            print(
                json.dumps(
                    {
                        "id": item.id,
                        "received_at": item.received_at.isoformat(),
                        "reason": item.reason,
                        "headers": item.headers,
                        "body": item.body.decode("utf-8", "backslashreplace"),
                    },
                    indent=2,
                )
            )
            return 0
        items = list(q)
        if args.json:
            for item in items:
                print(
                    json.dumps(
                        {
                            "id": item.id,
                            "received_at": item.received_at.isoformat(),
                            "reason": item.reason,
                            "bytes": len(item.body),
                        }
                    )
                )
        else:
            print(f"{len(items)} quarantined request(s)")
            for item in items:
                print(
                    f"{item.id:>6}  {item.received_at:%Y-%m-%d %H:%M:%S}  "
                    f"{len(item.body):>8} B  {item.reason}"
                )
        return 0
    finally:
        container.close()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="loyalty",
        description="JeriCommerce loyalty service: webhooks in, read models out.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run ingress, projections and API in one process")
    run.set_defaults(func=_cmd_run)
    q = sub.add_parser("quarantine", help="signed webhooks that could not be stored")
    qsub = q.add_subparsers(dest="action", required=True)
    ql = qsub.add_parser("list", help="list quarantined requests")
    ql.add_argument("--json", action="store_true", help="one JSON object per line")
    qs = qsub.add_parser("show", help="show one quarantined request in full")
    qs.add_argument("id", type=int)
    q.set_defaults(func=_cmd_quarantine)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logs.configure()
    try:
        return int(args.func(args))
    except ConfigError as e:
        print(f"loyalty: {e}", file=sys.stderr)
        return 2
