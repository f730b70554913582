"""`loyalty erase`, `loyalty export`, `loyalty erasures` and `loyalty keys`:
the operator's side of erasure, export and key management."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from service.bootstrap import build
from service.cli.confirm import confirmed
from service.cli.keys_status import print_key_status
from service.config import Settings
from service.legacyrows import MigrationIncomplete
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
        privacy = container.privacy()
        try:
            customer = privacy.reads.get(args.customer_id)
        except NotFound:
            print("loyalty: no such customer (unknown or erased)", file=sys.stderr)
            return 1
        out = sys.stdout
        if args.out:
            try:
                out = open_private(Path(args.out))
            except OSError as e:
                print(
                    f"loyalty: cannot create {args.out}: {e.strerror}", file=sys.stderr
                )
                return 1
        try:
            count = write_export(
                out,
                {
                    "customer_id": args.customer_id,
                    "exported_at": datetime.now(UTC).isoformat(),
                    "read_model": plain(customer),
                },
                (_event(e) for e in privacy.iter_events(args.customer_id)),
                (_quarantined(q) for q in privacy.quarantined(args.customer_id)),
            )
        finally:
            if out is not sys.stdout:
                out.close()
        if args.out:
            print(f"exported {count} event(s) to {args.out}")
        return 0
    finally:
        container.close()


def open_private(path: Path) -> TextIO:
    """A new file only its owner can read: never an existing file, and
    never through a symlink (someone else's link would receive the data)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8")


def write_export(
    out: TextIO,
    head: dict[str, Any],
    events: Iterable[dict[str, Any]],
    quarantined: Iterable[dict[str, Any]],
) -> int:
    """The export document, one JSON value at a time (memory bounded by a
    page of events, whatever their number); returns how many events."""

    def dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, default=str)

    out.write("{\n")
    for key, value in head.items():
        out.write(f"  {dumps(key)}: {dumps(value)},\n")
    count = 0
    for name, items in (("events", events), ("quarantined_requests", quarantined)):
        out.write(f'  "{name}": [')
        first = True
        for item in items:
            out.write(("\n    " if first else ",\n    ") + dumps(item))
            first = False
            count += name == "events"
        out.write("\n  ]" if not first else "]")
        out.write(",\n" if name == "events" else "\n")
    out.write("}\n")
    out.flush()
    return count


def _quarantined(q: Any) -> dict[str, Any]:
    return {
        "id": q.id,
        "received_at": q.received_at.isoformat(),
        "reason": q.reason,
        "body": q.body.decode("utf-8", "replace"),
    }


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
    from service.masterkey import (
        read_master_key,
        remove_key_file,
        write_new_master_key,
    )

    container = build(settings)
    try:
        keyring = container.events.keyring
        if args.action == "rotate-master":
            path = Path(args.new_key_file)
            created = not path.exists()
            new = write_new_master_key(path) if created else read_master_key(path)
            try:
                if new.id == keyring.master.id:
                    print("loyalty: the new key is the current one", file=sys.stderr)
                    return 2
                old_id = keyring.master.id
                count = keyring.rotate_master(
                    new, container.quarantine.reseal_master, busy_for=args.wait
                )
            except BaseException:
                # Nothing changed in the store: a key file left behind would
                # only be mistaken for the store's key later.
                if created:
                    remove_key_file(path)
                raise
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
            try:
                events = container.events.legacy.encrypt_all()
            except MigrationIncomplete as e:
                print(f"loyalty: {e}", file=sys.stderr)
                return 1
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
    ex.add_argument(
        "--out",
        help="write to this new file (created mode 0600; an existing file or "
        "a symlink is refused) instead of stdout",
    )
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
    rot.add_argument(
        "--wait",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long to keep trying while writers keep the store busy "
        "(default 120); a rotation that gives up changes nothing",
    )
    ksub.add_parser("encrypt-existing", help="encrypt events stored before encryption")
    ks = ksub.add_parser(
        "status", help="the master key's id, what is still in clear, erasures"
    )
    ks.add_argument("--json", action="store_true", help="one JSON object")
    k.set_defaults(func=_cmd_keys)
