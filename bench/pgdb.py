"""The PostgreSQL database the bench runs on: its URL, a fresh schema per
run, what it stored, the CPU it spent, and the master key the roles share."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import psutil

if TYPE_CHECKING:
    import psycopg

    from service.masterkey import MasterKey


FALLBACK_URL = "postgresql://postgres@127.0.0.1:5432/test"


def default_url() -> str:
    """$BENCH_DATABASE_URL, read when asked (not at import), else the local test
    database."""
    return os.environ.get("BENCH_DATABASE_URL", FALLBACK_URL)


def shown(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def unreachable(url: str) -> str | None:
    """Why PostgreSQL at `url` cannot be used, or None if it can."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as e:
        return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return None


def _admin(url: str) -> psycopg.Connection[Any]:
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=5)


@contextlib.contextmanager
def fresh_schema(base: str, tag: str) -> Iterator[str]:
    """A `?schema=` URL for a new, unique schema; dropped afterwards, so runs
    never see each other's data."""
    schema = f"bench_{tag}_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(base)
    query = "&".join(x for x in (parts.query, urlencode({"schema": schema})) if x)
    try:
        yield urlunsplit(parts._replace(query=query))
    finally:
        with _admin(base) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def stored_positions(url: str) -> set[int]:
    from service.backends.postgres.store import conninfo, library_env

    env = library_env(url)
    with _admin(conninfo(env)) as conn:
        table = f'"{env["POSTGRES_SCHEMA"]}".stored_events'
        return {r[0] for r in conn.execute(f"SELECT notification_id FROM {table}")}


def postgres_cpu() -> float:
    """CPU seconds of PostgreSQL (other users' work too): its live processes,
    plus the exited backends the postmaster has reaped (its children's time),
    so a connection closing mid-run does not lose its CPU."""
    total = 0.0
    for p in psutil.process_iter(["name"]):
        if p.info["name"] != "postgres":
            continue
        with contextlib.suppress(psutil.Error):  # exited meanwhile
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def own_backends_cpu() -> float:
    """CPU seconds of the PostgreSQL backends serving this process's open
    connections; see `backends_cpu`."""
    return backends_cpu([os.getpid()])


def backends_cpu(pids: Iterable[int]) -> float:
    """CPU seconds of the PostgreSQL backends serving the open connections
    of processes `pids` (found by their client ports in the backends'
    titles), so other users of the server do not count. Background
    processes (the WAL writer, the checkpointer) are left out."""
    ports = set()
    for pid in pids:
        with contextlib.suppress(psutil.Error):  # exited meanwhile
            ports |= {
                f"({c.laddr.port})"
                for c in psutil.Process(pid).net_connections(kind="tcp")
                if c.raddr and c.laddr
            }
    total = 0.0
    for p in psutil.process_iter(["name", "cmdline"]):
        title = " ".join(p.info["cmdline"] or ())
        if p.info["name"] != "postgres" or not any(port in title for port in ports):
            continue
        with contextlib.suppress(psutil.Error):  # exited meanwhile
            t = p.cpu_times()
            total += t.user + t.system
    return total


# P1 --------------------------------------------------------------------------


def master_key_file() -> Path:
    """The bench's master key for PostgreSQL (required there); each run's
    fresh schema records whichever key first opens it."""
    from service.masterkey import write_new_master_key

    path = Path(__file__).with_name("out") / "pg-master.key"
    if not path.exists():
        # Here whatever --out says: a run on PostgreSQL alone may be the first.
        path.parent.mkdir(exist_ok=True)
        write_new_master_key(path)
    return path


def master_key() -> MasterKey:
    from service.masterkey import read_master_key

    return read_master_key(master_key_file())
