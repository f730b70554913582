"""`loyalty` / `python -m service`: run the service and operate it."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence

from service import logs, privacy_cli
from service.bootstrap import build
from service.config import ConfigError, Settings
from service.eventstore import STORE_ERRORS, StoreUnavailable
from service.quarantine import QuarantinedRequest


def _serve(roles: frozenset[str], reuse_port: bool = False) -> int:
    from service.runtime import reuse_port_socket, serve

    settings = Settings.from_environ(require_secret="ingress" in roles)
    container = build(settings)
    sock = (
        reuse_port_socket(settings.http_host, settings.http_port)
        if reuse_port
        else None
    )
    try:
        # The stdlib loop: uvloop measured no faster here (P1, three runs;
        # the loop is busy with thread wake-ups as much as with sockets).
        asyncio.run(serve(container, roles=roles, http_sock=sock))
    except (OSError, RuntimeError) as e:
        if "address" not in str(e).lower() and "bind" not in str(e).lower():
            raise
        print(f"loyalty: cannot listen: {e}", file=sys.stderr)
        return 4
    finally:
        container.close()
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    return _serve(frozenset({"ingress", "worker", "api"}))


def _cmd_worker(args: argparse.Namespace) -> int:
    return _serve(frozenset({"worker"}))


def _cmd_api(args: argparse.Namespace) -> int:
    return _serve(frozenset({"api"}))


def _ingress_child(supervisor: int) -> None:
    logs.configure()
    _stop_when_orphaned(supervisor)
    _serve(frozenset({"ingress"}), reuse_port=True)


def _stop_when_orphaned(parent: int, every: float = 0.5) -> None:
    """SIGTERM ourselves (a graceful stop) once `parent` is gone. A
    supervisor killed with SIGKILL cannot stop its children, and they would
    go on serving the port unsupervised, with nobody to restart or stop them."""
    import signal
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def _cmd_ingress(args: argparse.Namespace) -> int:
    settings = Settings.from_environ()  # fail here, once, if misconfigured
    if args.workers == 1:
        return _serve(frozenset({"ingress"}))
    if not settings.database_url:
        raise ConfigError(
            "--workers above 1 needs DATABASE_URL (SQLite has one writer)"
        )
    return supervise(_ingress_child, args.workers)


def supervise(target: Callable[[int], None], count: int) -> int:
    """Run `count` copies of `target` (given our pid) in child processes
    sharing the port; restart any that dies; stop them all on SIGTERM/SIGINT."""
    import multiprocessing
    import shutil
    import signal
    import tempfile
    import time

    from prometheus_client import multiprocess

    ctx = multiprocessing.get_context("spawn")
    stopping = False
    # The children share one port; their metrics go to one directory so a
    # scrape that reaches any child reports all of them.
    metrics_dir = tempfile.mkdtemp(prefix="loyalty-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def spawn() -> multiprocessing.process.BaseProcess:
        child = ctx.Process(target=target, args=(os.getpid(),), daemon=False)
        child.start()
        return child

    children = [spawn() for _ in range(count)]
    try:
        while not stopping:
            time.sleep(0.2)
            for i, child in enumerate(children):
                if not child.is_alive() and not stopping:
                    print(
                        f"loyalty: ingress worker {child.pid} exited; restarting",
                        file=sys.stderr,
                    )
                    if child.pid is not None:  # its live gauges stop counting
                        multiprocess.mark_process_dead(child.pid, metrics_dir)
                    children[i] = spawn()
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.join(10)
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _cmd_quarantine(args: argparse.Namespace) -> int:
    container = build(Settings.from_environ(require_secret=False))
    try:
        q = container.quarantine
        if args.action == "dismiss":
            done = q.resolve(args.id, f"dismissed: {args.note}")
            print(f"{args.id}: " + ("dismissed" if done else "not open"))
            return 0 if done else 1
        if args.action == "retry":
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
        if args.action == "show":
            item = q.get(args.id)
            if item is None:
                print(f"no quarantined request {args.id}", file=sys.stderr)
                return 1
            full = {
                **_quarantined(item),
                "headers": item.headers,
                "body": item.body.decode("utf-8", "backslashreplace"),
            }
            print(json.dumps(full, indent=2))
            return 0
        items = list(q)
        if args.json:
            for item in items:
                print(json.dumps(_quarantined(item)))
        else:
            print(f"{len(items)} quarantined request(s)")
            for item in items:
                print(
                    f"{item.id:>6}  {item.received_at:%Y-%m-%d %H:%M:%S}  "
                    f"{len(item.body):>8} B  {item.reason}"
                    + (f"  [{item.resolution}]" if item.resolution else "")
                )
        return 0
    finally:
        container.close()


def _quarantined(item: QuarantinedRequest) -> dict[str, object]:
    return {
        "id": item.id,
        "received_at": item.received_at.isoformat(),
        "reason": item.reason,
        "bytes": len(item.body),
        "resolution": item.resolution,
    }


def _cmd_customer(args: argparse.Namespace) -> int:
    from service.errors import NotFound
    from service.reads import CustomerReads
    from service.render import human, plain

    container = build(Settings.from_environ(require_secret=False))
    try:
        reads = CustomerReads(container.models, container.events)
        try:
            customer = (
                reads.lookup(args.key) if "@" in args.key else reads.get(args.key)
            )
        except NotFound as e:
            print(f"loyalty: {e}", file=sys.stderr)
            return 1
        print(json.dumps(plain(customer), indent=2) if args.json else human(customer))
        return 0
    finally:
        container.close()


def _cmd_rebuild(args: argparse.Namespace) -> int:
    from projections.rebuild import RebuildProgress, rebuild

    container = build(Settings.from_environ(require_secret=False))

    def bar(p: RebuildProgress) -> None:
        total = max(p.target, 1)
        share = min(p.done / total, 1.0)
        left = (p.target - p.done) / p.events_per_second if p.events_per_second else 0
        filled = int(share * 30)
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {p.done}/{p.target} events "
            f"{p.events_per_second:,.0f}/s  {max(left, 0):.0f}s left   "
        )
        sys.stderr.flush()

    try:
        done = rebuild(container.events, container.models, on_progress=bar)
        sys.stderr.write("\n")
        print(
            f"rebuilt generation {done.generation} up to position {done.done} "
            f"at {done.events_per_second:,.0f} events/s"
        )
        return 0
    finally:
        container.close()


def _cmd_dead_letters(args: argparse.Namespace) -> int:
    container = build(Settings.from_environ(require_secret=False))
    try:
        if args.action == "show":
            (event,) = container.events.read_positions([args.position]) or (None,)
            letter = next(
                (
                    d
                    for d in container.models.dead_letters(
                        after=args.position - 1, limit=1
                    )
                    if d.position == args.position
                ),
                None,
            )
            if event is None or letter is None:
                print(f"no dead letter at position {args.position}", file=sys.stderr)
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
        if args.action == "dismiss":
            done = container.models.dismiss_dead_letter(args.position, args.note)
            print(f"{args.position}: " + ("dismissed" if done else "not open"))
            return 0 if done else 1
        if args.action == "retry":
            from projections.deadletters import retry

            positions = (
                [d.position for d in container.models.dead_letters(limit=10**9)]
                if args.all
                else args.positions
            )
            failed = 0
            for position in positions:
                outcome = retry(
                    container.models, container.events.read_positions, position
                )
                failed += not outcome.applied
                print(f"{position}: {outcome.detail}")
            return 1 if failed else 0
        letters = container.models.dead_letters(limit=args.limit)
        for d in letters:
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
        return 0
    finally:
        container.close()


def _cmd_config(args: argparse.Namespace) -> int:
    from service.config import reference

    print(reference())
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    settings = Settings.from_environ(require_secret=False)
    container = build(settings)
    try:
        models = container.models
        head = container.events.head()
        applied = models.applied_position()
        status = {
            "backend": settings.backend,
            "store": (
                "PostgreSQL (DATABASE_URL)"
                if settings.database_url
                else str(settings.data_dir.resolve())
            ),
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


def _cmd_events(args: argparse.Namespace) -> int:
    import time

    from projections.events import parse_event_type

    container = build(Settings.from_environ(require_secret=False))
    types = []
    for name in args.type:
        t = parse_event_type(name)
        if t is None and name.lower() != "unknown":
            print(f"loyalty: unknown event type {name!r}", file=sys.stderr)
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


def _cmd_send(args: argparse.Namespace) -> int:
    import hashlib
    import hmac
    import urllib.error
    import urllib.request
    from pathlib import Path

    settings = Settings.from_environ()
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
    url = args.url or (
        f"http://{settings.http_host}:{settings.http_port}/webhooks/jericommerce"
    )
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "content-type": "application/json",
            "x-jericommerce-hmac-sha256": signature,
            "x-jericommerce-event-type": args.type,
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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="loyalty",
        description="JeriCommerce loyalty service: webhooks in, read models out.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run ingress, projections and API in one process")
    run.set_defaults(func=_cmd_run)
    ing = sub.add_parser(
        "ingress",
        help="run only the webhook ingress (PostgreSQL: scale with --workers)",
    )
    ing.add_argument(
        "--workers", type=int, default=1, help="processes sharing HTTP_PORT"
    )
    ing.set_defaults(func=_cmd_ingress)
    wk = sub.add_parser(
        "worker",
        help="run only the projection worker (one applies; others stand by)",
    )
    wk.set_defaults(func=_cmd_worker)
    api = sub.add_parser("api", help="run only the gRPC API (any number of copies)")
    api.set_defaults(func=_cmd_api)
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
    q.set_defaults(func=_cmd_quarantine)
    qp = qsub.add_parser(
        "purge", help="delete requests older than the retention period"
    )
    qp.add_argument(
        "--older-than-days",
        type=int,
        help="default: QUARANTINE_RETENTION_DAYS",
    )
    qp.set_defaults(func=privacy_cli._cmd_quarantine_purge)
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
    sd = sub.add_parser(
        "send", help="sign a JSON file with WEBHOOK_SECRET and POST it as a webhook"
    )
    sd.add_argument("file", help="JSON body file, or - for standard input")
    sd.add_argument("--type", required=True, help="event name, e.g. 'Balance changed'")
    sd.add_argument("--url", help="default: this service's webhook endpoint")
    sd.set_defaults(func=_cmd_send)
    cfg = sub.add_parser("config", help="print the configuration reference")
    cfg.set_defaults(func=_cmd_config)
    c = sub.add_parser("customer", help="print one customer's read model")
    c.add_argument("key", help="a customer id, or an email (contains @)")
    c.add_argument("--json", action="store_true", help="the full model as JSON")
    c.set_defaults(func=_cmd_customer)
    r = sub.add_parser(
        "rebuild",
        help="rebuild every read model from the event store (online: readers "
        "keep the old models until the new ones are complete)",
    )
    r.set_defaults(func=_cmd_rebuild)
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
    privacy_cli.add_parsers(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    # gRPC's C core writes its own plain-text lines (e.g. refused TLS
    # handshakes) to stderr; keep our log JSON lines only.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    args = parser().parse_args(argv)
    logs.configure(os.environ.get("LOG_LEVEL", "INFO").upper())
    try:
        return int(args.func(args))
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
