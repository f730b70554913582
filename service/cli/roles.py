"""`loyalty run|ingress|worker|api`: run the service's roles.

`run` is one process; `run --split` is a supervisor of two: the front
(ingress and API) and the projector (the worker), which tell each other of
their commits (service/backends/sqlite/notify.py on SQLite); `run --split
--writer` adds the store's writer process, which appends what the front
sends it. `ingress --workers N` on SQLite supervises N ingress processes and
the store's writer process they send their envelopes to (service/writer/)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any

from service import collector, logs, tracing
from service.backends import Backend, backend_for
from service.bootstrap import ALL_ROLES, Container, build, build_service
from service.cli.supervisor import Child, stop_when_orphaned, supervise
from service.config import ConfigError, Settings


def serve(
    settings: Settings,
    roles: frozenset[str],
    reuse_port: bool = False,
    remote_writer: bool = False,
) -> int:
    import uvloop

    traces = tracing.from_environ(os.environ)  # OTEL_* only; off when unset
    container = build(settings)
    try:
        # uvloop for every role: the webhook ingress alone spent about 6 %
        # less CPU a webhook on it, and `make run`'s one process (the gRPC
        # API included) 4 to 10 % less an event in each of four same-run
        # pairs (docs/performance.md). grpc.aio runs on any asyncio loop
        # that can watch a file descriptor (its poller thread wakes the
        # loop through a socket).
        uvloop.run(_run(container, roles, reuse_port, remote_writer, traces))
    except (OSError, RuntimeError) as e:
        if "address" not in str(e).lower() and "bind" not in str(e).lower():
            raise
        print(f"loyalty: cannot listen: {e}", file=sys.stderr)
        return 4
    finally:
        container.close()
    return 0


async def _run(
    container: Container,
    roles: frozenset[str],
    reuse_port: bool,
    remote_writer: bool,
    traces: tracing.Tracing,
) -> None:
    from service.runtime import serve

    service = build_service(
        container,
        roles,
        reuse_port=reuse_port,
        tracing=traces,
        remote_writer=remote_writer,
    )
    # Once started, the process's start-up objects are settled for the collector.
    await serve(service, on_ready=lambda _bound: collector.tune())


def _ingress_child(supervisor: int, job: tuple[Settings, bool]) -> None:
    settings, remote_writer = job
    logs.configure(settings.log_level)
    stop_when_orphaned(supervisor)
    # Its exit code tells the supervisor when a restart cannot help.
    roles = frozenset({"ingress"})
    sys.exit(serve(settings, roles, reuse_port=True, remote_writer=remote_writer))


def _cmd_ingress(args: argparse.Namespace, settings: Settings) -> int:
    backend = backend_for(settings)
    # SQLite has one writer: several ingress processes share a writer
    # process, and one may use it to keep its own core for HTTP.
    writer = args.writer or (args.workers > 1 and not backend.shared_writers)
    if writer:
        _refuse_writer_process(backend)
    if args.workers == 1 and not writer:
        return serve(settings, frozenset({"ingress"}))
    children = [
        Child(f"ingress-{i}", _ingress_child, (settings, writer))
        for i in range(args.workers)
    ]
    if writer:
        # Opened (created, migrated) once, before the children open it at once.
        build(settings).close()
        # Its probes on METRICS_PORT, or any free port (its "listening" line).
        probes = dataclasses.replace(settings, metrics_port=settings.metrics_port or 0)
        children.insert(0, Child("writer", _split_child, (probes, WRITER, False)))
    # One port for several ingress processes: a scrape reaching any of them
    # reports them all. One ingress keeps plain metrics (the shared files
    # cost ~7 % of its loop) and its writer serves its own on METRICS_PORT.
    return supervise(children, shared_metrics=args.workers > 1)


def _refuse_writer_process(backend: Backend) -> None:
    """The store's writer process is for a store with one writer (SQLite)."""
    if backend.shared_writers:
        raise ConfigError(
            f"--writer is for the embedded store ({backend.name} is a writer itself)"
        )


FRONT, PROJECTOR = frozenset({"ingress", "api"}), frozenset({"worker"})
WRITER = frozenset({"writer"})


def _split_child(supervisor: int, job: tuple[Settings, frozenset[str], bool]) -> None:
    """A supervised child running `roles` (with the store's writer process
    appending for its ingress, if the job says so)."""
    settings, roles, remote_writer = job
    logs.configure(settings.log_level)
    stop_when_orphaned(supervisor)
    logs.get(__name__).info("child starting", roles=sorted(roles), pid=os.getpid())
    sys.exit(serve(settings, roles, remote_writer=remote_writer))


def _cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    if args.writer and not args.split:
        raise ConfigError("--writer is for `run --split` (`run` is one process)")
    if not args.split:
        return serve(settings, ALL_ROLES)
    if args.writer:
        _refuse_writer_process(backend_for(settings))
    # The stores are opened (created, migrated) once here, before the
    # children open them at the same moment.
    build(settings).close()
    # The front serves its probes on HTTP_PORT; the projector on
    # METRICS_PORT, or on any free port (its "listening" line says which);
    # the writer process on any free port.
    projector = dataclasses.replace(settings, metrics_port=settings.metrics_port or 0)
    children = [
        Child("front", _split_child, (settings, FRONT, args.writer)),
        Child("projector", _split_child, (projector, PROJECTOR, False)),
    ]
    if args.writer:
        writer = dataclasses.replace(settings, metrics_port=0)
        children.insert(0, Child("writer", _split_child, (writer, WRITER, False)))
    return supervise(children)


def _roles(*names: str) -> Any:
    def run(args: argparse.Namespace, settings: Settings) -> int:
        return serve(settings, frozenset(names))

    return run


def add_parsers(sub: Any) -> None:
    run = sub.add_parser("run", help="run ingress, projections and API in one process")
    run.add_argument(
        "--split",
        action="store_true",
        help="two processes under a supervisor: the front (ingress and API) and "
        "the projector (projections); uses more cores",
    )
    run.add_argument(
        "--writer",
        action="store_true",
        help="with --split, SQLite: a third process, the store's writer, appends "
        "what the front receives, leaving the front's core to HTTP and the API",
    )
    run.set_defaults(func=_cmd_run, needs_secret=True)
    ing = sub.add_parser(
        "ingress",
        help="run only the webhook ingress (scale with --workers; on SQLite "
        "the workers share a writer process)",
    )
    ing.add_argument(
        "--workers", type=int, default=1, help="processes sharing HTTP_PORT"
    )
    ing.add_argument(
        "--writer",
        action="store_true",
        help="SQLite: append through a writer process of its own, leaving the "
        "ingress's core to HTTP (implied by --workers above 1)",
    )
    ing.set_defaults(func=_cmd_ingress, needs_secret=True)
    wk = sub.add_parser(
        "worker",
        help="run only the projection worker (one applies; others stand by)",
    )
    wk.set_defaults(func=_roles("worker"))
    api = sub.add_parser("api", help="run only the gRPC API (any number of copies)")
    api.set_defaults(func=_roles("api"))
