"""`loyalty erase`, `loyalty export`, `loyalty erasures` and `loyalty keys`:
the operator's side of erasure, export and key management."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.bootstrap import build
from service.cli.confirm import confirmed
from service.cli.keys_status import print_key_status
from service.config import Settings
from service.privacy import WORKER_WAIT_SECONDS, wait_applied


def _cmd_erase(args: argparse.Namespace, settings: Settings) -> int:
    if not args.customer_id.strip():
        print("loyalty: a customer id is required", file=sys.stderr)
        return 2
    what = f"Erasing customer {args.customer_id} (their data key is destroyed)"
    if not confirmed(what, args.customer_id, yes=args.yes):
        return 1
    container = build(settings)
    try:
        privacy = container.privacy()
        erasure = privacy.erase(args.customer_id)
        if erasure.position:
            # A running worker deletes the read models when it reaches the
            # erasure's record; without one, `finish` does it alone.
            wait_applied(container.models, erasure.position, WORKER_WAIT_SECONDS)
        privacy.finish(erasure)
        print(
            json.dumps(
                {
                    "customer_id": erasure.customer_id,
                    "erased": erasure.erased,
                    "events": erasure.events,
                    "erased_at": erasure.erased_at.isoformat(),
                    "position": erasure.position,
                }
            )
        )
        return 0
    finally:
        container.close()


def _event(event: Any) -> dict[str, Any]:
    return {
        "position": event.position,
        "id": event.id,
        "type_name": event.type_name,
        "customer_id": event.customer_id,
        "created_at": event.created_at.isoformat(),
        "received_at": event.received_at.isoformat(),
        "body": json.loads(event.raw),
    }


def _cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from service.errors import NotFound
    from service.render import plain

    container = build(settings)
    try:
        try:
            export = container.privacy().export(args.customer_id)
        except NotFound:
            print("loyalty: no such customer (unknown or erased)", file=sys.stderr)
            return 1
        document = {
            "customer_id": args.customer_id,
            "exported_at": datetime.now(UTC).isoformat(),
            "read_model": plain(export.customer),
            "events": [_event(e) for e in export.events],
            "quarantined_requests": [
                {
                    "id": q.id,
                    "received_at": q.received_at.isoformat(),
                    "reason": q.reason,
                    "body": q.body.decode("utf-8", "replace"),
                }
                for q in export.quarantined
            ],
        }
        text = json.dumps(document, indent=2, ensure_ascii=False, default=str)
        if args.out:
            path = Path(args.out)
            path.write_text(text + "\n", encoding="utf-8")
            path.chmod(0o600)
            print(f"exported {len(export.events)} event(s) to {path}")
        else:
            print(text)
        return 0
    finally:
        container.close()


def _cmd_erasures(args: argparse.Namespace, settings: Settings) -> int:
    container = build(settings)
    try:
        rows = container.events.keyring.erasures(args.customer_id)
        for cid, when, events in rows:
            record = {"customer_id": cid, "erased_at": when, "events": events}
            print(
                json.dumps(record) if args.json else f"{when}  {cid}  {events} event(s)"
            )
        return 0
    finally:
        container.close()


def _cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from service.masterkey import read_master_key, write_new_master_key

    container = build(settings)
    try:
        keyring = container.events.keyring
        if args.action == "rotate-master":
            path = Path(args.new_key_file)
            new = read_master_key(path) if path.exists() else write_new_master_key(path)
            if new.id == keyring.master.id:
                print("loyalty: the new key is the current one", file=sys.stderr)
                return 2
            old_id = keyring.master.id
            count = keyring.rotate_master(new, container.quarantine.reseal_master)
            container.privacy().scrub()
            print(
                f"re-wrapped {count} data key(s) from master key {old_id} to "
                f"{new.id}.\nNow set MASTER_KEY_FILE={path} for every process, "
                "restart them, and destroy the old key file and its copies: "
                "backups taken before now then hold nothing that can be "
                "decrypted for customers erased since they were taken."
            )
            return 0
        if args.action == "encrypt-existing":
            events = container.events.encrypt_existing()
            requests = container.quarantine.encrypt_existing()
            keyring.clear_legacy()
            container.privacy().scrub()
            print(
                f"encrypted {events} stored event(s) and {requests} quarantined "
                "request(s) written before encryption"
            )
            return 0
        return print_key_status(keyring, args.json)
    finally:
        container.close()


def add_parsers(sub: Any) -> None:
    er = sub.add_parser(
        "erase",
        help="erase a customer for good (their data key is destroyed; docs/privacy.md)",
    )
    er.add_argument("customer_id")
    er.add_argument(
        "--yes",
        action="store_true",
        help="do not ask (for scripts): it is irreversible",
    )
    er.set_defaults(func=_cmd_erase)
    ex = sub.add_parser(
        "export", help="everything held about a customer, decrypted, as JSON"
    )
    ex.add_argument("customer_id")
    ex.add_argument("--out", help="write to this file (mode 0600) instead of stdout")
    ex.set_defaults(func=_cmd_export)
    au = sub.add_parser("erasures", help="the erasure audit trail (no personal data)")
    au.add_argument("--customer-id", help="only this customer")
    au.add_argument("--json", action="store_true", help="one JSON object per line")
    au.set_defaults(func=_cmd_erasures)
    k = sub.add_parser("keys", help="the master key and the customers' data keys")
    ksub = k.add_subparsers(dest="action", required=True)
    rot = ksub.add_parser(
        "rotate-master", help="re-wrap every data key under a new master key"
    )
    rot.add_argument(
        "--new-key-file",
        required=True,
        help="the new key's file (created, mode 0600, if it does not exist)",
    )
    ksub.add_parser("encrypt-existing", help="encrypt events stored before encryption")
    ks = ksub.add_parser(
        "status", help="the master key's id, what is still in clear, erasures"
    )
    ks.add_argument("--json", action="store_true", help="one JSON object")
    k.set_defaults(func=_cmd_keys)
