"""The test kit's ports: parallel workers never hand out the same one."""

from __future__ import annotations

import pytest

from testkit import launch


@pytest.mark.parametrize("worker", ["gw0", "gw1"])
def test_each_worker_hands_out_only_its_own_share(
    worker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    monkeypatch.setattr(launch, "_handed_out", set())
    index = int(worker[2:])
    ports = [launch.free_port() for _ in range(20)]
    assert len(set(ports)) == 20
    assert all((p >> 1) % 2 == index for p in ports), ports


def test_outside_a_worker_every_port_is_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert launch._worker_share() == (0, 1)
