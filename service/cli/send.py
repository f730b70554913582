"""`loyalty send`: sign a JSON body and POST it to the ingress, as
JeriCommerce would (the header names and path are the ingress's own)."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from service.config import Settings
from service.ingest import EVENT_TYPE_HEADER, SIGNATURE_HEADER
from service.webhook import WEBHOOK_PATH


def _cmd_send(args: argparse.Namespace, settings: Settings) -> int:
    try:
        body = (
            Path(args.file).read_bytes()
            if args.file != "-"
            else sys.stdin.buffer.read()
        )
    except OSError as e:
        print(f"loyalty: cannot read {args.file}: {e.strerror}", file=sys.stderr)
        return 2
    signature = hmac.new(settings.webhook_secrets[0], body, hashlib.sha256).hexdigest()
    url = args.url or f"http://{settings.http_host}:{settings.http_port}{WEBHOOK_PATH}"
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "content-type": "application/json",
            SIGNATURE_HEADER: signature,
            EVENT_TYPE_HEADER: args.type,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            print(answer.status, answer.read().decode())
            return 0
    except urllib.error.HTTPError as e:
        print(e.code, e.read().decode(), file=sys.stderr)
        return 1
    except urllib.error.URLError as e:
        print(f"loyalty: cannot reach {url}: {e.reason}", file=sys.stderr)
        return 1


def add_parsers(sub: Any) -> None:
    sd = sub.add_parser(
        "send", help="sign a JSON file with WEBHOOK_SECRET and POST it as a webhook"
    )
    sd.add_argument("file", help="JSON body file, or - for standard input")
    sd.add_argument("--type", required=True, help="event name, e.g. 'Balance changed'")
    sd.add_argument("--url", help="default: this service's webhook endpoint")
    sd.set_defaults(func=_cmd_send, needs_secret=True)
