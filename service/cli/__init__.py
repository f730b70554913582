"""`loyalty` / `python -m service`: run the service and operate it.

One module per command group; each adds its parsers with `add_parsers` and
sets `func(args, settings)` (and `needs_secret`, for the commands that sign
or verify webhooks). The settings are read here, once, and the log level
comes from them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from service import logs
from service.cli import (
    dead_letters,
    inspect,
    privacy,
    quarantine,
    rebuild,
    roles,
    send,
)
from service.config import ConfigError, Settings
from service.eventstore import STORE_ERRORS, StoreUnavailable

GROUPS = (roles, quarantine, inspect, send, rebuild, dead_letters, privacy)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="loyalty",
        description="JeriCommerce loyalty service: webhooks in, read models out.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parsers(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    # gRPC's C core writes its own plain-text lines (e.g. refused TLS
    # handshakes) to stderr; keep our log JSON lines only.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    args = parser().parse_args(argv)
    try:
        # A command that needs no settings (`config`) runs whatever they are.
        settings = (
            Settings.from_environ(require_secret=getattr(args, "needs_secret", False))
            if getattr(args, "needs_settings", True)
            else None
        )
        logs.configure(settings.log_level if settings else "INFO")
        return int(args.func(args, settings))
    except ConfigError as e:
        print(f"loyalty: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `loyalty events | head`: the reader left; that is not an error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (StoreUnavailable, *STORE_ERRORS) as e:
        print(f"loyalty: the store is unavailable: {e}", file=sys.stderr)
        return 3
