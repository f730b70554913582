"""Fixtures of the end-to-end tests: real service processes on real ports."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

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
