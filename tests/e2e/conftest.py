"""Fixtures of the end-to-end tests: real service processes on real ports."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import pytest

from service.backends.sqlite.store import open_sqlite
from testkit.fuzz.harness import Harness
from testkit.fuzz.oracle import MAX_BODY
from testkit.launch import ServiceProcess
from testkit.tls import Pki, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """One throw-away PKI for every TLS test (testkit.tls.make_pki)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl")
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """The service with its defaults (SQLite) in a fresh data directory,
    shared by one test module."""
    with ServiceProcess(tmp_path_factory.mktemp("svc")) as svc:
        yield svc


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """The fuzz tests' service (MAX_BODY_BYTES=64 KiB) and client, shared by
    a test module; prints the answers' totals at the end."""
    with ServiceProcess(
        tmp_path_factory.mktemp("fuzz"), MAX_BODY_BYTES=str(MAX_BODY)
    ) as svc:
        store, quarantine, factory = open_sqlite(svc.data_dir)
        with httpx.Client(base_url=svc.url, timeout=10) as client:
            h = Harness(svc, client, store, quarantine, factory)
            yield h
        factory.close()
        totals = "\n".join(f"  HTTP {k}: {v}" for k, v in sorted(h.statuses.items()))
        print(f"\nfuzz totals: {sum(h.statuses.values())} requests\n{totals}")
